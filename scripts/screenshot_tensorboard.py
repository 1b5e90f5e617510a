"""Screenshots of TensorBoard's dashboards for tiny real runs: what a user sees, for the README and for review.

    python scripts/screenshot_tensorboard.py                        # mlp, vae, dcgan, 2 epochs (a few min)
    python scripts/screenshot_tensorboard.py --models mlp alexnet --epochs 3   # alexnet adds ~1 min an epoch
    python scripts/screenshot_tensorboard.py --logdir runs          # runs you already have; trains nothing
    python scripts/screenshot_tensorboard.py --out /tmp/tb --size 1400 1600 --keep-logdir
    python scripts/screenshot_tensorboard.py --logdir runs --tag-filter 'learning_rate|loss' --out /tmp/tb-lr

Without --logdir it trains each recipe with the real command (`recipes train MODEL --epochs N
--run-dir LOGDIR/MODEL --quiet`, bundled digits) into a fresh temporary logdir, removed at
the end unless --keep-logdir. It then starts TensorBoard on a free loopback port and opens
each dashboard in headless Chromium: Time Series, Scalars, Images and Graphs, and the graph
of every run and tag (a layer graph opened one level, as a double-click would). TensorBoard
fetches its data after the page loads, so the script drives Chromium through the DevTools
protocol and takes each screenshot once the page has been quiet for a while: no request in
flight, no spinner, the element count and loaded images unchanged.

Writes to --out (default docs/tensorboard/): timeseries.png, scalars.png, images.png,
graphs.png (the Graphs dashboard as it opens) and graphs-<run>-<tag>.png, e.g.
graphs-mlp-logs-train-keras.png. TensorBoard and Chromium are stopped however the script ends.

Needs Chromium (Debian: `apt-get install chromium`; or give --chromium PATH). Nothing else
beyond the package's own dependencies: the DevTools websocket client is the standard library.
"""

import argparse
import base64
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]

DEFAULT_MODELS = ["mlp", "vae", "dcgan"]
DASHBOARDS = ["timeseries", "scalars", "images", "graphs"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUIET_S = 1.5  # a page counts as rendered after this long with nothing changing
STALE_S = 10.0  # a worker's script (the charts') reports its end to the worker, never to the page
MIN_WAIT_S = 2.0  # TensorBoard's first requests start only after its scripts have run

# One look at the page, through every shadow root (the Polymer dashboards live in them):
# how many elements, how many images have loaded, how many spinners or progress bars show.
PAGE_STATE_JS = """
(() => {
  let elements = 0, images = 0, busy = 0;
  const shown = (el) => el.getClientRects().length > 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      elements++;
      const tag = el.localName;
      if (tag === 'img' && el.complete && el.naturalWidth > 0) images++;
      if ((tag === 'mat-spinner' || tag === 'mat-progress-spinner' || tag === 'mat-progress-bar'
           || ((tag === 'paper-spinner' || tag === 'paper-spinner-lite') && el.active)
           || (tag === 'paper-progress' && el.indeterminate)) && shown(el)) busy++;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return JSON.stringify({ready: document.readyState, elements, images, busy});
})()
"""

# The Graphs dashboard's controls, found through the shadow roots.
FIND_GRAPH_CONTROLS_JS = """
const findControls = (root) => {
  for (const el of root.querySelectorAll('*')) {
    if (el.localName === 'tf-graph-controls') return el;
    const found = el.shadowRoot && findControls(el.shadowRoot);
    if (found) return found;
  }
  return null;
};
"""

# Chooses a run and tag in the Graphs controls, as a user would in their drop-downs.
# (The dashboard reads `#graphs&run=...` from the URL, but its controls then keep showing the
# first run, with that run's tag list, and the graph fails to load.)
SELECT_GRAPH_JS = (
    """
((runName, tagName) => {"""
    + FIND_GRAPH_CONTROLS_JS
    + """
  const controls = findControls(document);
  if (!controls || !controls.datasets) return JSON.stringify({error: 'no graph controls'});
  const runIndex = controls.datasets.findIndex((d) => d.name === runName);
  if (runIndex < 0) return JSON.stringify({error: 'no run ' + runName});
  controls._selectedRunIndex = runIndex;
  const tagIndex = controls.datasets[runIndex].tags.findIndex((t) => t.tag === tagName);
  if (tagIndex < 0) return JSON.stringify({error: 'no tag ' + tagName + ' in ' + runName});
  controls._selectedTagIndex = tagIndex;
  // An index that did not change leaves the graph type as it was: op graph, even for `keras`.
  controls._selectedGraphType = controls._getDefaultSelectionType();
  return JSON.stringify({run: runName, tag: tagName, type: controls._selectedGraphType});
})(%s, %s)
"""
)

# A drop-down whose list was redrawn under the same index keeps its old label (a new run with
# one tag still reads `keras`): make each show its selected item again.
REFRESH_GRAPH_LABELS_JS = (
    "(() => {"
    + FIND_GRAPH_CONTROLS_JS
    + """
  const menus = [...findControls(document).shadowRoot.querySelectorAll('paper-dropdown-menu')];
  menus.forEach((menu) => menu._selectedItemChanged(menu.selectedItem));
  return JSON.stringify(menus.map((menu) => menu.value));
})()
"""
)

# Opens the boxes at the top of a layer graph (the model, or each sub-model), as a double-click
# would: a Keras graph otherwise shows one closed box named after the model.
EXPAND_GRAPH_JS = """
(() => {
  const findScene = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.localName === 'tf-graph-scene') return el;
      const found = el.shadowRoot && findScene(el.shadowRoot);
      if (found) return found;
    }
    return null;
  };
  const scene = findScene(document);
  if (!scene) return JSON.stringify([]);
  const closed = [...scene.shadowRoot.querySelectorAll('g.node')]
    .map((g) => g.__data__)
    .filter((d) => d && d.node.isGroupNode && !d.expanded)
    .map((d) => d.node.name);
  closed.forEach((name) => scene.fire('node-toggle-expand', {name}));
  return JSON.stringify(closed);
})()
"""


class DevTools:
    """The few Chrome DevTools protocol calls this script needs, over a websocket (RFC 6455)."""

    def __init__(self, ws_url, *, timeout=60.0):
        url = urllib.parse.urlsplit(ws_url)
        self._sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
        self._buffer = bytearray()
        self._next_id = 0
        self.in_flight = {}  # network requests started and not yet finished: id -> start time
        self.last_change = time.monotonic()
        # No Origin header: Chromium then accepts the connection without --remote-allow-origins.
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {url.path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"DevTools refused the websocket: {head.decode(errors='replace')}")

    def close(self):
        self._sock.close()

    def call(self, method, **params):
        """Sends one command and returns its result, handling the events that arrive meanwhile."""
        self._next_id += 1
        self._send(json.dumps({"id": self._next_id, "method": method, "params": params}).encode())
        while True:
            message = json.loads(self._receive())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self._on_event(message.get("method"), message.get("params", {}))

    def _on_event(self, method, params):
        if method == "Network.requestWillBeSent" and params["request"]["url"].startswith("http"):
            self.in_flight[params["requestId"]] = time.monotonic()
            self.last_change = time.monotonic()
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.in_flight.pop(params["requestId"], None)
            self.last_change = time.monotonic()

    def loading(self):
        """Whether a request is in flight; one older than STALE_S is taken as never to report its end."""
        return any(time.monotonic() - started < STALE_S for started in self.in_flight.values())

    def _fill(self):
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("DevTools closed the connection")
        self._buffer += chunk

    def _take(self, n):
        while len(self._buffer) < n:
            self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _send(self, payload, opcode=0x1):
        # Frames from a client must be masked; the length takes 7, 16 or 64 bits.
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def _receive(self):
        """One whole text message, reassembled from its frames; answers pings on the way."""
        parts = []
        while True:
            first, second = self._take(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._take(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._take(8))
            mask = self._take(4) if second & 0x80 else None
            payload = self._take(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            if opcode == 0x9:
                self._send(payload, opcode=0xA)
                continue
            if opcode in (0x0, 0x1, 0x2):
                parts.append(payload)
                if first & 0x80:
                    return b"".join(parts).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def stop(process):
    """Ends a process started with start_new_session=True, and every process it started."""
    if process is None or process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            pass


def recipes_command():
    """The `recipes` command of this interpreter's environment, else the one on PATH, else scripts/train.py."""
    beside = pathlib.Path(sys.executable).parent / "recipes"
    if beside.exists():
        return [str(beside), "train"]
    if shutil.which("recipes"):
        return [shutil.which("recipes"), "train"]
    return [sys.executable, str(REPO / "scripts" / "train.py")]


def train_runs(logdir, models, epochs):
    for model in models:
        command = [*recipes_command(), model, "--epochs", str(epochs), "--run-dir", str(logdir / model), "--quiet"]
        print("$", " ".join(command), flush=True)
        started = time.monotonic()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        print(f"  {model}: {time.monotonic() - started:.0f} s", flush=True)


def start_tensorboard(logdir, log_file, timeout_s=90.0):
    """Starts TensorBoard on a free loopback port; returns (process, base URL) once it lists the runs."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline, runs, previous = time.monotonic() + timeout_s, None, None
    try:
        # It answers before it has read every event file: wait until the run list stops growing.
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"TensorBoard exited with status {process.returncode}; its last lines are printed above"
                )
            try:
                runs = json.loads(get(f"{base}/data/runs"))
            except OSError:
                runs = None
            if runs and runs == previous:
                return process, base
            previous = runs
            time.sleep(1.0)
    except BaseException:
        stop(process)
        raise
    stop(process)
    raise TimeoutError(f"TensorBoard did not list any run within {timeout_s:.0f} s; its last lines are printed above")


def start_chromium(executable, user_data_dir, size, log_file, timeout_s=30.0):
    """Starts headless Chromium with a DevTools port; returns (process, DevTools on a blank page)."""
    width, height = size
    command = [
        executable,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={user_data_dir}",
        "--remote-debugging-port=0",  # Chromium picks a port and writes it to DevToolsActivePort
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "about:blank",
    ]
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    port_file = pathlib.Path(user_data_dir) / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"Chromium exited with status {process.returncode}; its last lines are printed above"
                )
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                targets = json.loads(get(f"http://127.0.0.1:{lines[0]}/json/list"))
                pages = [t for t in targets if t["type"] == "page"]
                if pages:
                    devtools = DevTools(pages[0]["webSocketDebuggerUrl"])
                    devtools.call("Page.enable")
                    devtools.call("Network.enable")
                    size_args = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
                    devtools.call("Emulation.setDeviceMetricsOverride", **size_args)
                    return process, devtools
            time.sleep(0.2)
    except BaseException:
        stop(process)
        raise
    stop(process)
    raise TimeoutError(f"Chromium opened no DevTools port within {timeout_s:.0f} s; its last lines are printed above")


def evaluate(devtools, expression):
    result = devtools.call("Runtime.evaluate", expression=expression, returnByValue=True)
    if "exceptionDetails" in result:
        raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
    return json.loads(result["result"]["value"])


def wait_until_rendered(devtools, timeout_s):
    """Waits until the page has been quiet for QUIET_S; returns False if it never was within timeout_s."""
    started = time.monotonic()
    previous, quiet_since = None, time.monotonic()
    while time.monotonic() - started < timeout_s:
        state = evaluate(devtools, PAGE_STATE_JS)
        now = time.monotonic()
        if state != previous or devtools.loading() or state["ready"] != "complete" or state["busy"]:
            quiet_since = now
        previous = state
        quiet_from = max(quiet_since, devtools.last_change)
        if now - started >= MIN_WAIT_S and now - quiet_from >= QUIET_S:
            return True
        time.sleep(0.25)
    return False


def open_page(devtools, url, timeout_s):
    devtools.call("Page.navigate", url="about:blank")  # a new hash alone would not reload the dashboard
    devtools.in_flight.clear()
    devtools.call("Page.navigate", url=url)
    if not wait_until_rendered(devtools, timeout_s):
        print(f"  warning: {url} was still changing after {timeout_s:.0f} s; the screenshot may be incomplete")


def screenshot(devtools, path):
    data = devtools.call("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))
    print(path, flush=True)


def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def dashboard_url(base, dashboard, tag_filter):
    if not tag_filter:
        return f"{base}/#{dashboard}"
    quoted = urllib.parse.quote(tag_filter, safe="")
    if dashboard == "timeseries":  # the Angular dashboard keeps its state in the query, the Polymer ones in the hash
        return f"{base}/?tagFilter={quoted}#{dashboard}"
    return f"{base}/#{dashboard}&tagFilter={quoted}"


def take_screenshots(devtools, base, out, timeout_s, tag_filter=None):
    for dashboard in DASHBOARDS:
        open_page(devtools, dashboard_url(base, dashboard, tag_filter), timeout_s)
        screenshot(devtools, out / f"{dashboard}.png")
    graphs = json.loads(get(f"{base}/data/plugin/graphs/info"))
    for run in sorted(graphs):
        for tag in sorted(graphs[run]["tags"]):
            open_page(devtools, f"{base}/#graphs", timeout_s)
            chosen = evaluate(devtools, SELECT_GRAPH_JS % (json.dumps(run), json.dumps(tag)))
            if "error" in chosen:
                print(f"  warning: could not open the graph {run} {tag}: {chosen['error']}")
                continue
            wait_until_rendered(devtools, timeout_s)
            if chosen["type"] == "conceptual_graph" and evaluate(devtools, EXPAND_GRAPH_JS):
                wait_until_rendered(devtools, timeout_s)
            labels = evaluate(devtools, REFRESH_GRAPH_LABELS_JS)
            if run not in labels or tag not in labels:
                print(f"  warning: the graph controls read {labels}, not {run} {tag}")
            screenshot(devtools, out / f"graphs-{slug(run)}-{slug(tag)}.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--logdir", type=pathlib.Path, help="existing runs to show; trains nothing. Default: train into a temporary one"
    )
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help=f"Default: {' '.join(DEFAULT_MODELS)}")
    parser.add_argument("--epochs", type=int, default=2, help="Default: 2")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "tensorboard", help="Default: %(default)s")
    parser.add_argument(
        "--size", nargs=2, type=int, default=[1400, 1000], metavar=("W", "H"), help="Default: 1400 1000"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a page. Default: 60")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument(
        "--tag-filter", metavar="REGEX", help="show only matching charts and images, e.g. learning_rate"
    )
    parser.add_argument("--keep-logdir", action="store_true", help="keep the logdir this script trains into")
    args = parser.parse_args()
    if not args.chromium:
        parser.error("Chromium not found on PATH; install it (apt-get install chromium) or give --chromium PATH")
    if args.logdir is not None and not args.logdir.is_dir():
        parser.error(f"--logdir must be an existing folder of runs. Received: --logdir {args.logdir}")
    # A plain `kill` should also stop TensorBoard and Chromium: let it unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    work = pathlib.Path(tempfile.mkdtemp(prefix="screenshot-tensorboard-"))
    logdir = args.logdir or work / "logdir"
    tensorboard = chromium = devtools = None
    try:
        if args.logdir is None:
            train_runs(logdir, args.models, args.epochs)
        args.out.mkdir(parents=True, exist_ok=True)
        with open(work / "tensorboard.log", "w") as tb_log, open(work / "chromium.log", "w") as chromium_log:
            tensorboard, base = start_tensorboard(logdir, tb_log)
            print(f"TensorBoard at {base} on {logdir}", flush=True)
            (work / "profile").mkdir()
            chromium, devtools = start_chromium(args.chromium, work / "profile", args.size, chromium_log)
            take_screenshots(devtools, base, args.out, args.timeout, args.tag_filter)
    except Exception:
        for log in ("tensorboard.log", "chromium.log"):  # they go with the work folder below
            if (work / log).exists():
                print(f"--- last lines of {log}:", *(work / log).read_text().splitlines()[-15:], sep="\n")
        raise
    finally:
        if devtools is not None:
            devtools.close()
        stop(chromium)
        stop(tensorboard)
        if args.keep_logdir and args.logdir is None and logdir.exists():
            kept = pathlib.Path(tempfile.mkdtemp(prefix="tensorboard-logdir-"))
            shutil.move(str(logdir), str(kept / "logdir"))
            print(f"logdir kept: {kept / 'logdir'}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
