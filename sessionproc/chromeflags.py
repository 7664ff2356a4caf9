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
# the flag on and off in the same run (Chromium 156, the stand-in page, two
# sessions per variant, 12 linked; 122 MB per session with all of them but
# the last one, added later).
#
# Tried and left out, measured the same way:
# - --single-process: +0.8 MB once the GPU and network services are
#   threads already, and Chromium supports it for debugging only.
# - --no-zygote: +12.8 MB (each process loads what the zygote shared).
# - --js-flags=--optimize-for-size, --max-semi-space-size=1, --lite-mode:
#   within 0.4 MB on the bare page; on the weighted page (430 MB per
#   session, two of each) the first two cost +9.7 and +6.4 MB, within the
#   spread of the base's two sessions (422-439): nothing saved either way.
#   --jitless is not tried: it turns WebAssembly off, and nothing tells
#   that the real page does without it.
# - --disable-crashpad-for-testing: -0.7 MB in the tree, and the two crash
#   handler processes Chromium starts per browser (0.6 MB each, which leave
#   the session's tree) are gone; but the switch is meant for Chromium's
#   own tests.
# - --disable-site-isolation-trials, SpareRendererForSitePerProcess,
#   BackForwardCache, the on-device model features, --window-size=800,600:
#   each within 0.7 MB, noise.
#
# Idle CPU, the same way with --idle-seconds (two sessions per variant, a
# minute after linking, 120 s): 0.04-0.05 % of a core per session, almost
# all of it the browser process's own housekeeping (CPU sampled every
# 15 s, memory dumps about each minute, the allocator's purge every 4 s);
# the session process and chromedriver take nothing measurable, and the
# page paints no frames.  Tried, nothing saved: --disable-field-trial-config
# (0.050 against 0.042), the PartitionAlloc memory reclaimer every 30 s
# instead of 4 s (0.042), no hang watcher (0.050).
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
# renderer serves the page: one boot alone, against the stand-in, one
# session at a time taking turns with the New Tab page (8 of each, load
# average 4-6): 1.12 s of CPU instead of 1.67, 1.15 s to the QR code
# instead of 1.68.  chromedriver merges these into the profile's
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
# nothing measurable: tests/bench/bench_flags.py --idle-seconds 120,
# variant chromedriver-throttling-off, three sessions each, 0.050 % of a
# core per session excluded, 0.044 % passed (spread 0.033-0.067), PSS
# within 0.2 MB.
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
