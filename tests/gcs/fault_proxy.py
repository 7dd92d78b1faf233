"""A loopback HTTP proxy that answers a share of requests with 503 or 429.

Put between a Google Cloud Storage client and the emulator
(``STORAGE_EMULATOR_HOST=proxy.url``), it stands for a GCS that throttles
(429 ``rateLimitExceeded``) and sheds load (503 ``backendError``). Faults are
answered before forwarding, so the emulator never sees a failed request, as
when GCS refuses one; every other request is forwarded, and the server's own
address in JSON answers and ``Location`` headers (an object's ``mediaLink``,
an upload session) is replaced by the proxy's, so that a client which follows
those links stays behind the proxy.

The faults are deterministic and reach every kind of request (a listing, a
download, an upload's start and its bytes, a batch of copies or deletes...):
of each kind, the first request and then every ``every``-th one fails, at most
``max_faults_per_kind`` times, with the statuses in turn. The proxy is
bounded: it listens on 127.0.0.1 only, serves at most ``max_requests``
requests and stops by itself after ``lifetime_s`` seconds.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import json
import threading
import urllib.parse

__all__ = ['FaultProxy', 'request_kind']

_HOP_BY_HOP = frozenset({'connection', 'keep-alive', 'proxy-authenticate',
                         'proxy-authorization', 'te', 'trailers', 'transfer-encoding',
                         'upgrade', 'content-length'})
_REASONS = {503: 'backendError', 429: 'rateLimitExceeded'}


def request_kind(method: str, path: str) -> str:
  """``METHOD what`` of a JSON-API request: ``GET list``, ``POST upload``, ``POST batch``..."""
  parts = urllib.parse.urlsplit(path)
  route, query = parts.path, urllib.parse.parse_qs(parts.query)
  if route.startswith('/upload/'):
    what = 'upload'
  elif route.startswith('/batch/'):
    what = 'batch'
  elif '/copyTo/' in route or '/rewriteTo/' in route:
    what = 'copy'
  elif route.startswith('/download/') or query.get('alt') == ['media']:
    what = 'download'
  elif route.rstrip('/').endswith('/o'):
    what = 'list'
  elif '/o/' in route:
    what = 'object'
  else:
    what = 'bucket'
  return f'{method} {what}'


class FaultProxy:
  """Forwards to ``upstream``, failing the first and every ``every``-th request of each kind.

  Args:
    upstream: the server's base URL, e.g. ``http://127.0.0.1:9023``.
    every: of each kind of request, one in this many is answered with a fault.
    statuses: the fault statuses, used in turn.
    max_faults_per_kind: no more faults of a kind after this many.
    max_requests: requests beyond this many are refused with 503 and counted.
    lifetime_s: the proxy stops by itself after this long.
  """
  def __init__(self, *, upstream: str, every: int = 8, statuses: tuple[int, ...] = (503, 429),
               max_faults_per_kind: int = 3, max_requests: int = 20_000,
               lifetime_s: float = 600.0):
    if every < 2:
      raise ValueError(f'every={every} must be at least 2: a retry must be able to pass')
    parsed = urllib.parse.urlsplit(upstream)
    if parsed.hostname not in ('127.0.0.1', 'localhost', '::1'):
      raise ValueError(f'upstream={upstream!r} must be on the loopback interface')
    self._upstream = (parsed.hostname, parsed.port or 80)
    self._upstream_netloc = parsed.netloc.encode()
    self._every = every
    self._statuses = statuses
    self._max_faults_per_kind = max_faults_per_kind
    self._max_requests = max_requests
    self._lifetime_s = lifetime_s
    self._lock = threading.Lock()
    self.requests = 0
    self.faults: collections.Counter[int] = collections.Counter()
    self.faults_by_kind: collections.Counter[str] = collections.Counter()
    self._seen: collections.Counter[str] = collections.Counter()
    self.refused = 0
    self._server: http.server.ThreadingHTTPServer | None = None
    self._address: tuple[str, int] | None = None
    self._thread: threading.Thread | None = None
    self._timer: threading.Timer | None = None

  @property
  def url(self) -> str:
    host, port = self._address
    return f'http://{host}:{port}'

  def _next_fault(self, method: str, path: str) -> int | None:
    """The status to fail this request with, or None to forward it."""
    kind = request_kind(method, path)
    with self._lock:
      self.requests += 1
      if self.requests > self._max_requests:
        self.refused += 1
        return 503
      self._seen[kind] += 1
      if ((self._seen[kind] - 1) % self._every
          or self.faults_by_kind[kind] >= self._max_faults_per_kind):
        return None
      status = self._statuses[sum(self.faults.values()) % len(self._statuses)]
      self.faults[status] += 1
      self.faults_by_kind[kind] += 1
      return status

  def _forward(self, method: str, path: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    connection = http.client.HTTPConnection(*self._upstream, timeout=60)
    try:
      connection.putrequest(method, path, skip_accept_encoding=True)
      for name, value in headers:
        if name.lower() != 'host':
          connection.putheader(name, value)
      connection.putheader('Content-Length', str(len(body)))
      connection.endheaders(body)
      response = connection.getresponse()
      data = response.read()
    finally:
      connection.close()
    own = '{}:{}'.format(*self._address).encode()
    kept = []
    for name, value in response.getheaders():
      if name.lower() == 'location':
        value = value.replace(self._upstream_netloc.decode(), own.decode())
      if name.lower() not in _HOP_BY_HOP:
        kept.append((name, value))
    content_type = response.getheader('Content-Type', '')
    if content_type.startswith(('application/json', 'multipart/mixed')):
      data = data.replace(self._upstream_netloc, own)
    return response.status, kept, data

  def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
    proxy = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def _body(self) -> bytes:
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
          chunks = []
          while size := int(self.rfile.readline().split(b';')[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
          self.rfile.readline()
          return b''.join(chunks)
        return self.rfile.read(int(self.headers.get('Content-Length') or 0))

      def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
          self.send_header(name, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
          self.wfile.write(body)

      def _handle(self) -> None:
        body = self._body()
        status = proxy._next_fault(self.command, self.path)
        if status is not None:
          error = {'error': {'code': status, 'message': f'injected {status}',
                             'errors': [{'reason': _REASONS.get(status, 'injected'),
                                         'message': f'injected {status}'}]}}
          self._reply(status, [('Content-Type', 'application/json')],
                      json.dumps(error).encode())
          return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        self._reply(*proxy._forward(self.command, self.path, headers, body))

      do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

      def log_message(self, format, *args):  # noqa: A002 -- the base class's name
        pass

    return Handler

  def start(self) -> FaultProxy:
    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
    self._address = self._server.server_address[:2]
    self._server.daemon_threads = True
    self._thread = threading.Thread(target=self._server.serve_forever, name='fault-proxy',
                                    daemon=True)
    self._thread.start()
    self._timer = threading.Timer(self._lifetime_s, self.stop)
    self._timer.daemon = True
    self._timer.start()
    return self

  def stop(self) -> None:
    if self._timer is not None:
      self._timer.cancel()
    server, self._server = self._server, None
    if server is not None:
      server.shutdown()
      server.server_close()

  def __enter__(self) -> FaultProxy:
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()
