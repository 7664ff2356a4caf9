"""What Chromium is started with: its flags, the switches of chromedriver's
left out, the preferences of the first tab.  Each says why, and what it
saves where it was measured (``tests/bench/bench_flags.py``).  Kept apart
from ``browser.py``, which starts and ends the browser with them."""

from __future__ import annotations

# Flags for a headless browser that talks to nothing but its page.  Without
# the background-networking ones Chromium keeps trying to reach Google's
# hosts.  The memory ones matter when dozens run on one machine: each says
# what it saves per session, PSS of the session's whole tree (session
# process, chromedriver, Chromium) measured with tests/bench/bench_flags.py,
# the flag on and off in the same run (Chromium 156, the stand-in page).
# The flags tried and left out, and idle CPU, which no flag changed:
# docs/decisions.md, "Chromium flags tried and left out" and "Chromium's
# idle CPU".
BASE_FLAGS = (
    "--headless=new",
    "--disable-gpu",
    # No GPU, so no SwiftShader either: nothing to rasterize WebGL with,
    # which the page does not use.  -10.9 MB.
    "--disable-software-rasterizer",
    # The GPU process's thread inside the browser process: one process
    # fewer.  -2.2 MB.
    "--in-process-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    # One list (a second --disable-features would replace the first).  The
    # omnibox pop-up features make headless Chrome preload a WebUI renderer
    # nobody sees: a third of a browser's start-up CPU.
    "--disable-features=Translate,MediaRouter,OptimizationHints,InterestFeedContentSuggestions,"
    "PreloadTopChromeWebUI,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup",
    # The network service as a thread of the browser process instead of a
    # process of its own.  -17.4 MB.  Its crash then takes the
    # browser along, which for one page is what a renderer crash does.
    "--enable-features=NetworkServiceInProcess2",
    "--mute-audio",
    "--password-store=basic",
    # All frames in one renderer: without it a second one starts.  -7.0 MB.
    "--renderer-process-limit=1",
    # Chromium starts two zygotes; the unsandboxed one forks the utility
    # processes that have no sandbox of their own (the network service
    # among them, a thread of the browser process here).  Here it forks
    # nothing and idles with 15 MB of its own.  Without it, such a process,
    # if one ever starts, is started the plain way.  -17.0 MB (three
    # sessions each, 135.3 -> 118.3).
    "--no-unsandboxed-zygote",
    # Three minutes after its start Chromium rates the machine for its
    # built-in AI model (a service process that benchmarks the CPU and GPU)
    # unless told the rating; the service then stays, 21 MB PSS of its own.
    # Rated "very low" (2), the browser neither runs that benchmark nor
    # offers the model; the page uses neither.  Switching the AI features
    # off did not stop it here.  -19.3 MB per session from the third minute
    # on (three sessions each, measured 200 s after linking).
    "--optimization-guide-performance-class=2",
    "--log-level=3",
)


# What the first tab opens.  With no address on its command line (and
# chromedriver gives none), Chromium opens its New Tab page, a WebUI page
# (``chrome://new-tab-page-third-party``) in a renderer of its own, and the
# navigation to WhatsApp Web then needs a second renderer, as a WebUI
# process never hosts a web page.  Opening ``about:blank`` instead, the one
# renderer serves the page, and a boot takes a third less CPU
# (docs/decisions.md, "The first tab opens about:blank").  chromedriver merges these into the profile's
# Preferences file at every start (a profile of an older version gets
# them at its next start).
START_PREFS = {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]}

# ``navigator.webdriver`` false: the Blink switch undoes what chromedriver's
# ``--enable-automation`` (excluded below as well) would set.
STEALTH_FLAGS = ("--disable-blink-features=AutomationControlled",)
# chromedriver's own switches we do not want.  Besides ``enable-automation``
# (above), it turns off the throttling of timers in hidden pages: a page of
# ours that ever became hidden would then run its timers at full rate, idle
# or not, where a desktop browser (the real page's usual host) throttles
# them.  Our page is visible in headless Chromium, so at idle it changes
# nothing measurable (docs/decisions.md, "chromedriver's timer switch left
# out").
EXCLUDED_SWITCHES = ["enable-automation", "disable-background-timer-throttling",
                     "disable-backgrounding-occluded-windows"]


def proxy_flags(relay_port: int) -> list[str]:
    """The flags of a session behind a proxy, which Chromium reaches
    through the session's relay (``proxyrelay.py``) as a SOCKS5 proxy.
    Each closes a way around it:

    - ``socks5://``: Chromium hands host names to a SOCKS5 proxy, so names
      are resolved at the proxy, not here;
    - ``<-loopback>``: Chromium sends loopback addresses (127.0.0.0/8,
      localhost, [::1]) around every proxy unless told not to;
    - the host resolver answers nothing but the relay's own address: a
      lookup that would happen here anyway (DNS prefetch, a pre-connect)
      finds no address instead of leaking the name;
    - no QUIC: UDP does not go through a SOCKS5 proxy, and Chromium would
      try it beside the proxied connection where a server offers it;
    - WebRTC may use no UDP the proxy does not carry (with ``PROXY_PREFS``).
    """
    return [
        f"--proxy-server=socks5://127.0.0.1:{relay_port}",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-quic",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    ]


# Preferences of a session behind a proxy: no DNS prefetch or
# pre-connections (network prediction off), WebRTC only over the proxy.
PROXY_PREFS = {
    "net.network_prediction_options": 2,  # never
    "webrtc.ip_handling_policy": "disable_non_proxied_udp",
    "webrtc.multiple_routes_enabled": False,
    "webrtc.nonproxied_udp_enabled": False,
}
