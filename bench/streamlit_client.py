"""A student whose browser runs on their own laptop, as the server sees it: one Streamlit session spoken
over the app's websocket with the messages a browser sends (open the app, click a page, rerun the
status area's fragment when the server asks), and every image of a page fetched as the browser would;
nothing is rendered. Ten of these load the server as ten students do without putting ten browsers'
rendering on the server's own cores (bench/sessions.py --clients protocol)."""
import asyncio
import re
import time
import urllib.request

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

MEDIA = re.compile(rb"/media/[0-9a-f]+\.[a-z]+")


class ProtocolSession:
    """One open session: `open()` then `goto(page)`; each returns once the server says the requested
    run is no longer running, as the browser shows it, and the page's images were fetched; it raises
    on an exception box."""

    def __init__(self, url: str):
        self.url = url
        self.pages: dict[str, str] = {}  # url path -> page script hash, from the server's navigation
        self.page_hash = ""
        self.media: set[bytes] = set()
        self.error: str | None = None
        self.started = False  # the requested run began (its new_session came)
        self.seen: list[str] = []  # the kinds of message since the last request: why a page timed out
        self.finished = asyncio.Event()
        self.timers: dict[str, asyncio.Task] = {}

    async def open(self, timeout: float) -> None:
        self.ws = await websockets.connect(self.url.replace("http", "ws", 1) + "/_stcore/stream",
                                           subprotocols=["streamlit"], max_size=None, open_timeout=timeout)
        self.reader = asyncio.create_task(self._read())
        await self._run("", timeout)

    async def goto(self, page: str, timeout: float) -> None:
        await self._run(page, timeout)

    async def close(self) -> None:
        for task in [*self.timers.values(), self.reader]:
            task.cancel()
        await self.ws.close()

    async def _run(self, page: str, timeout: float) -> None:
        self.finished.clear()
        self.media.clear()
        self.error = None
        self.seen.clear()
        self.started = False
        self.page_hash = self.pages.get(page, "")
        await self._send(page_name=page, page_script_hash=self.page_hash)
        try:
            await asyncio.wait_for(self.finished.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no end of the page's script after {timeout:g} s; received: {self.seen[-12:]}") from None
        if self.error:
            raise RuntimeError(self.error)
        await asyncio.gather(*(asyncio.to_thread(self._fetch, m.decode()) for m in self.media))

    async def _send(self, **state) -> None:
        msg = BackMsg()
        for key, value in state.items():
            setattr(msg.rerun_script, key, value)
        await self.ws.send(msg.SerializeToString())

    def _fetch(self, path: str) -> None:
        urllib.request.urlopen(self.url + path, timeout=60).read()

    async def _every(self, interval: float, fragment: str) -> None:
        """The browser's timer for an `st.fragment(run_every=...)`: ask for the fragment's rerun."""
        while True:
            await asyncio.sleep(interval)
            await self._send(page_script_hash=self.page_hash, fragment_id=fragment, is_auto_rerun=True)

    async def _read(self) -> None:
        async for data in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            self.seen.append(f"{kind}:{msg.script_finished}" if kind == "script_finished" else kind)
            if kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            elif kind == "delta":
                self.media.update(MEDIA.findall(data))
                element = msg.delta.new_element
                if element.WhichOneof("type") == "exception" and self.error is None:
                    self.error = f"{element.exception.type}: {element.exception.message[:200]}"
            elif kind == "auto_rerun":
                fragment = msg.auto_rerun.fragment_id
                if fragment not in self.timers:
                    self.timers[fragment] = asyncio.create_task(self._every(msg.auto_rerun.interval, fragment))
            elif kind == "stop_auto_rerun":
                for task in self.timers.values():
                    task.cancel()
                self.timers.clear()
            elif kind == "new_session":
                self.started = True
            elif kind == "session_status_changed" and self.started and not msg.session_status_changed.script_is_running:
                self.finished.set()  # the browser's "not running" (what bench/sessions.py waits for in chromium)


async def protocol_student(url: str, number: int, pages: list[str], rounds: int, think: float,
                           times: list, wait: float = 60.0) -> None:
    """As bench/sessions.py's browser student: open the app (timed as "first load"), then every page
    in turn, `think` seconds of reading between clicks; each answer timed from the request to the
    script finished and the page's images fetched."""
    await asyncio.sleep(number * think / 10)
    session = ProtocolSession(url)
    start = time.perf_counter()
    entry = {"session": number, "round": 0, "page": "first load"}
    try:
        await session.open(wait)
    except Exception as e:  # noqa: BLE001  (recorded; this student stops)
        times.append({**entry, "seconds": round(time.perf_counter() - start, 3), "error": f"{type(e).__name__}: {e}"[:400]})
        return
    times.append({**entry, "seconds": round(time.perf_counter() - start, 3)})
    try:
        for round_ in range(rounds):
            for page in pages[1:] + pages[:1]:
                await asyncio.sleep(think)
                entry = {"session": number, "round": round_, "page": page}
                start = time.perf_counter()
                try:
                    await session.goto("" if page == pages[0] else page, wait)
                except Exception as e:  # noqa: BLE001  (a page not answered in time: recorded, the session goes on)
                    entry["error"] = f"{type(e).__name__}: {e}"[:400]
                times.append({**entry, "seconds": round(time.perf_counter() - start, 3)})
    finally:
        await session.close()
