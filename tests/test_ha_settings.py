"""The high-availability settings, no services: a list of RabbitMQ URLs
read, checked and masked URL by URL; Redis Sentinel's addresses checked."""

from __future__ import annotations

import logging

import pytest

from wwnode.config import ConfigError, load
from wwnode.redact import RedactingFormatter, ambiguous_url, redact_url, split_urls, url_secrets
from wwnode.redis_side.conn import parse_sentinels

CLUSTER = "amqp://wwnode:pw-one-1@mq1:5672/prod,amqp://wwnode:pw%2Ctwo@mq2:5672/prod, amqps://other:pw-three@mq3/prod"


def test_a_list_of_urls_is_split_at_the_commas_that_start_a_url():
    assert split_urls(CLUSTER) == ["amqp://wwnode:pw-one-1@mq1:5672/prod", "amqp://wwnode:pw%2Ctwo@mq2:5672/prod",
                                   "amqps://other:pw-three@mq3/prod"]
    assert split_urls("redis://:secret@h:1/0?a=1,2") == ["redis://:secret@h:1/0?a=1,2"]  # a comma in a query


def test_every_password_of_a_list_is_masked():
    assert redact_url(CLUSTER) == ("amqp://wwnode:***@mq1:5672/prod,amqp://wwnode:***@mq2:5672/prod,"
                                   "amqps://other:***@mq3/prod")
    assert url_secrets(CLUSTER) >= {"pw-one-1", "pw%2Ctwo", "pw,two", "pw-three"}
    formatter = RedactingFormatter("%(message)s", url_secrets(CLUSTER))
    line = formatter.format(logging.makeLogRecord({"msg": f"could not reach {CLUSTER} (pw,two)"}))
    assert "pw-" not in line and "pw,two" not in line and "pw%2C" not in line


def test_one_ambiguous_url_in_a_list_refuses_the_setting_without_quoting_it():
    bad = "amqp://u:pass@mq1/prod,amqp://u:pa/ss@mq2/prod"
    assert ambiguous_url(bad) and not ambiguous_url(CLUSTER)
    with pytest.raises(ConfigError) as refused:
        load({"RABBIT_MQ_URL": bad, "NODE_ID": "n"}, dotenv=None)
    assert "pa/ss" not in str(refused.value)
    with pytest.raises(ConfigError, match="amqp://"):
        load({"RABBIT_MQ_URL": "amqp://mq1/prod,http://mq2/prod", "NODE_ID": "n"}, dotenv=None)
    assert load({"RABBIT_MQ_URL": CLUSTER, "NODE_ID": "n"}, dotenv=None).rabbit_mq_url == CLUSTER


def test_sentinel_addresses_are_host_port_pairs():
    assert parse_sentinels("10.0.0.1:26379, s2:26380,[::1]:26381") == [("10.0.0.1", 26379), ("s2", 26380),
                                                                        ("::1", 26381)]
    assert parse_sentinels("") == []
    for bad in ("s1", "s1:port", ":26379", "s1:70000"):
        with pytest.raises(ConfigError, match="REDIS_SENTINELS"):
            load({"REDIS_SENTINELS": f"s0:1,{bad}", "NODE_ID": "n"}, dotenv=None)
    cfg = load({"REDIS_SENTINELS": "s1:26379,s2:26379", "REDIS_MASTER_NAME": "wa", "NODE_ID": "n"}, dotenv=None)
    assert (cfg.redis_master_name, cfg.redis_replica_wait) == ("wa", 0.5)
    with pytest.raises(ConfigError, match="REDIS_REPLICA_WAIT"):
        load({"REDIS_REPLICA_WAIT": "-1", "NODE_ID": "n"}, dotenv=None)
