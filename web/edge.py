"""The network edge: TLS and whole requests read by one event loop, before any server thread.

Why: cheroot does the TLS handshake in its one accept thread and reads each
request in one of its worker threads, a byte at a time if the client sends
it so, with only a per-read timeout. Sixteen slow clients (slowloris) held
every thread and every page timed out, the PCI pause too. A front end such
as nginx or haproxy holds idle sockets cheaply, but is a second program to
install, configure, run and keep in step with the box. Python's asyncio does
the same in one thread with TLS, so the edge is in the box's own process:

- the TLS handshake and the request head must arrive within
  :attr:`EdgeLimits.head_timeout_s` in total (not per byte), the body within
  :attr:`EdgeLimits.body_timeout_s`; heads over ``max_head_bytes`` and bodies
  over ``max_body_bytes`` are refused, except a logged-in person's upload to
  one of ``large_uploads`` (an update bundle), which is passed on as it
  arrives, one at a time, at ``upload_min_rate`` bytes a second at least;
- each address may hold ``per_address`` connections, all together ``total``;
  more are closed at once, before the handshake;
- a request reaches cheroot (on a private Unix socket) only when it is
  complete, so no server thread ever waits for a client;
- of cheroot's ``backend_slots`` threads, ``reserved_slots`` are kept for
  requests carrying a live session: a flood of anonymous requests waits (at
  most ``queue_timeout_s``, then 503) while logged-in people are served;
- one request per connection (``Connection: close``), which keeps the edge
  free of response parsing; TLS session resumption keeps reconnecting cheap.

The client's address goes to the app in the ``X-Linekeeper-Peer`` header,
which the edge always replaces (a client cannot forge it) and
:func:`from_edge` turns back into ``REMOTE_ADDR``.
"""

import asyncio
import collections
import dataclasses
import http.cookies
import logging
import socket
import ssl
import threading

log = logging.getLogger("linekeeper.web")

PEER_HEADER = b"X-Linekeeper-Peer"
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"x-linekeeper-peer",
    b"expect",
    b"upgrade",
    b"te",
}
_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class EdgeLimits:
    """Deadlines (s), sizes (bytes) and connection counts at the edge."""

    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 30.0
    queue_timeout_s: float = 10.0
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 6 * 1024 * 1024
    # ((path, most bytes), ...): uploads larger than max_body_bytes, for a live session
    large_uploads: tuple = ()
    upload_min_rate: int = 64 * 1024
    per_address: int = 16
    total: int = 512
    backend_slots: int = 16
    reserved_slots: int = 4

    def __post_init__(self):
        if not 0 <= self.reserved_slots < self.backend_slots:
            raise ValueError("reserved_slots must leave anonymous requests at least one slot")


def from_edge(app):
    """Wrap the WSGI ``app`` served behind the edge: the client's address and HTTPS."""

    def wrapped(environ, start_response):
        environ["REMOTE_ADDR"] = environ.pop("HTTP_X_LINEKEEPER_PEER", "")
        environ["wsgi.url_scheme"] = "https"
        environ["HTTPS"] = "on"
        return app(environ, start_response)

    return wrapped


def session_cookie_checker(sessions, cookie_name):
    """A ``logged_in(cookie_header)`` for :class:`Edge` over :class:`web.sessions.Sessions`."""

    def logged_in(cookie_header):
        if not cookie_header:
            return False
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(cookie_header)
        except http.cookies.CookieError:
            return False
        morsel = jar.get(cookie_name)
        if morsel is None:
            return False
        session, _ = sessions.load(morsel.value, touch=False)
        return session is not None

    return logged_in


class _Refused(Exception):
    """A request answered by the edge itself: ``status``, a short text, and how many bytes
    of its body the client is still to send (``unread``), read and dropped after the answer."""

    def __init__(self, status, text, unread=0):
        super().__init__(text)
        self.status = status
        self.text = text
        self.unread = unread


class Edge:
    """Serve TLS on ``host:port`` and pass complete requests to ``backend_path``.

    :param ssl_context: a server-side :class:`ssl.SSLContext`
    :param backend_path: the Unix socket cheroot listens on
    :param logged_in: ``(cookie_header: str) -> bool``: does the request carry
        a live session (it gets the reserved slots)
    :param limits: :class:`EdgeLimits`
    """

    def __init__(self, ssl_context, backend_path, logged_in=None, limits=EdgeLimits()):
        self._ssl = ssl_context
        self._backend_path = backend_path
        self._logged_in = logged_in or (lambda cookie: False)
        self.limits = limits
        self._open = collections.Counter()
        self._n_open = 0
        self._busy = 0
        self._uploading = False
        # Each client's task, held: asyncio keeps a stream's task only weakly, and one
        # waiting on an idle backend (a live stream) whose client went was collected
        # while pending ("Task was destroyed but it is pending!" in the log).
        self._tasks = set()
        self.refused_connections = 0
        self._loop = None
        self._thread = None
        self._stopped = None
        self._sock = None

    @property
    def port(self):
        return self._sock.getsockname()[1]

    def start(self, host, port):
        """Bind now (raises :class:`OSError` when the port is taken) and serve in a thread."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=256)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="linekeeper-web-edge", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve(ready))
        self._loop.close()

    async def _serve(self, ready):
        self._stopped = asyncio.Event()
        self._cond = asyncio.Condition()
        server = await asyncio.start_server(self._client, sock=self._sock, limit=self.limits.max_head_bytes)
        ready.set()
        async with server:
            await self._stopped.wait()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self):
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(lambda: self._stopped.set())
            self._thread.join(10)
            self._thread = None

    # ------------------------------------------------------------------ one client
    async def _client(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername")
        addr = peer[0] if peer else ""
        limits = self.limits
        if self._n_open >= limits.total or self._open[addr] >= limits.per_address:
            self.refused_connections += 1
            writer.transport.abort()
            return
        self._n_open += 1
        self._open[addr] += 1
        try:
            await self._exchange(reader, writer, addr)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            # A tab closed, a laptop lid shut: one quiet line, never a traceback.
            log.info("a web client went away (%s)", type(exc).__name__)
        except (TimeoutError, asyncio.LimitOverrunError, ValueError):
            pass  # the client was too slow or spoke nonsense: drop it
        finally:
            self._n_open -= 1
            self._open[addr] -= 1
            if self._open[addr] <= 0:
                del self._open[addr]
            writer.transport.abort()

    async def _exchange(self, reader, writer, addr):
        limits = self.limits
        # One deadline for the handshake and the whole head, however slowly they trickle in.
        deadline = asyncio.get_running_loop().time() + limits.head_timeout_s
        async with asyncio.timeout_at(deadline):
            await writer.start_tls(self._ssl)
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise _Refused(431, "Request header fields too large") from None
            request_line, headers = _parse_head(head)
            logged_in = self._logged_in(_header(headers, b"cookie").decode("latin-1"))
            large = _large_upload(request_line, limits) if logged_in else 0
            length = _content_length(headers, max(large, limits.max_body_bytes))
            if length > limits.max_body_bytes:
                await self._stream_upload(request_line, headers, reader, length, addr, writer)
                return
            if _header(headers, b"expect").lower() == b"100-continue" and length:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = b""
            if length:
                body = await asyncio.wait_for(reader.readexactly(length), limits.body_timeout_s)
            await self._pass(request_line, headers, body, addr, logged_in, writer, reader)
        except _Refused as refused:
            writer.write(_response(refused.status, refused.text))
            await asyncio.wait_for(writer.drain(), limits.send_timeout_s)
            if refused.unread:
                await _discard(reader, refused.unread, limits.body_timeout_s)

    async def _stream_upload(self, request_line, headers, reader, length, addr, writer):
        """A large upload: one at a time, its body passed on as it arrives, whole within
        ``body_timeout_s`` plus ``length / upload_min_rate`` seconds."""
        if self._uploading:
            raise _Refused(503, "Another upload is in progress; try again when it has finished")
        self._uploading = True
        try:
            if _header(headers, b"expect").lower() == b"100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            deadline = self.limits.body_timeout_s + length / self.limits.upload_min_rate
            await self._pass(request_line, headers, (reader, length, deadline), addr, True, writer, reader)
        finally:
            self._uploading = False

    async def _pass(self, request_line, headers, body, addr, logged_in, writer, reader=None):
        """Pass one request to the app and its answer back; ``body`` is bytes, or
        ``(reader, length, deadline_s)`` to copy from the client as it comes. A client
        that goes (``reader`` at its end) ends the exchange at once: a live stream of a
        closed tab held its backend thread until the stream's own end."""
        limits = self.limits
        allowed = limits.backend_slots - (0 if logged_in else limits.reserved_slots)
        try:
            async with self._cond:
                await asyncio.wait_for(
                    self._cond.wait_for(lambda: self._busy < allowed), limits.queue_timeout_s
                )
                self._busy += 1
        except TimeoutError:
            raise _Refused(503, "The box is busy; try again in a moment") from None
        backend = None
        try:
            back_reader, backend = await asyncio.open_unix_connection(self._backend_path)
            kept = b"".join(line + b"\r\n" for name, line in headers if name not in _HOP_BY_HOP)
            backend.write(
                request_line
                + b"\r\n"
                + kept
                + b"Connection: close\r\n"
                + PEER_HEADER
                + b": "
                + addr.encode("ascii", "replace")
                + b"\r\n\r\n"
                + (body if isinstance(body, bytes) else b"")
            )
            await backend.drain()
            if not isinstance(body, bytes):
                await asyncio.wait_for(_copy(body[0], backend, body[1]), body[2])
            gone = asyncio.ensure_future(_client_gone(reader)) if reader is not None else None
            try:
                while True:
                    read = asyncio.ensure_future(back_reader.read(_CHUNK))
                    waiting = {read} if gone is None else {read, gone}
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if not read.done():
                        read.cancel()  # the client went: nobody to answer
                        log.info("a web client went away (it closed the connection)")
                        break
                    chunk = read.result()
                    if not chunk:
                        break
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), limits.send_timeout_s)
            finally:
                if gone is not None:
                    gone.cancel()
        finally:
            if backend is not None:
                backend.transport.abort()
            async with self._cond:
                self._busy -= 1
                self._cond.notify_all()


async def _client_gone(reader):
    """Return when the client has closed its side (one request per connection: anything
    it sends after its request is read and dropped)."""
    while await reader.read(_CHUNK):
        pass


async def _discard(reader, length, timeout_s):
    """Read and drop up to ``length`` bytes the client still sends, for ``timeout_s`` at most.

    Why: a browser sends its whole upload before it reads the answer, and a connection
    closed with its data unread is reset, the answer lost with it: the person saw
    "connection reset" where the box had said the file was too large."""
    try:
        async with asyncio.timeout(timeout_s):
            while length > 0:
                chunk = await reader.read(min(_CHUNK, length))
                if not chunk:
                    return
                length -= len(chunk)
    except TimeoutError:
        pass  # too slow to wait for: the answer was sent, the client may still read it


async def _copy(reader, writer, length):
    while length:
        chunk = await reader.read(min(_CHUNK, length))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", length)
        writer.write(chunk)
        await writer.drain()
        length -= len(chunk)


def _large_upload(request_line, limits):
    """How many bytes ``request_line`` may send when it is a large upload, else 0."""
    method, target, _ = request_line.split(b" ")
    path = target.partition(b"?")[0]
    return next((most for where, most in limits.large_uploads if method == b"POST" and path == where), 0)


def _parse_head(head):
    """``(request_line, [(lower_name, raw_line)])``; raises :class:`_Refused` (400)."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[1]:
        raise _Refused(400, "Bad request line")
    headers = []
    for line in lines[1:]:
        name, sep, _ = line.partition(b":")
        if not sep or not name or name != name.strip() or any(c < 0x21 for c in name):
            raise _Refused(400, "Bad header line")
        # "_" as "-": WSGI servers name both HTTP_X_..., so X_Linekeeper_Peer
        # must not slip past the check for X-Linekeeper-Peer.
        headers.append((name.lower().replace(b"_", b"-"), line))
    return lines[0], headers


def _header(headers, name):
    for lower, line in headers:
        if lower == name:
            return line.partition(b":")[2].strip()
    return b""


def _content_length(headers, max_bytes):
    if any(lower == b"transfer-encoding" for lower, _ in headers):
        raise _Refused(411, "Send the request body with a Content-Length")
    values = {line.partition(b":")[2].strip() for lower, line in headers if lower == b"content-length"}
    if not values:
        return 0
    if len(values) > 1 or not values.pop().isdigit():
        raise _Refused(400, "Bad Content-Length")
    length = int(_header(headers, b"content-length"))
    if length > max_bytes:
        too_large = "The upload is larger than the box takes (at most %d MB here)" % (max_bytes >> 20)
        raise _Refused(413, too_large, unread=length)
    return length


def _response(status, text):
    reason = {
        400: "Bad Request",
        411: "Length Required",
        413: "Content Too Large",
        431: "Request Header Fields Too Large",
        503: "Service Unavailable",
    }[status]
    body = (text + "\n").encode("ascii")
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Length: %d\r\n"
        b"Connection: close\r\nCache-Control: no-store\r\n%s\r\n"
        % (status, reason.encode("ascii"), len(body), _HARDENING)
        + body
    )


# What every page of the app carries (web.security.security_headers), on the edge's own
# replies too: they are served over the same TLS.
_HARDENING = (
    b"X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
    b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
    b"Strict-Transport-Security: max-age=31536000\r\n"
)
