// The benchmark's loopback sink: answers like PicoShare's upload (POST
// /api/auth sets the cookie, POST /api/entry answers {"id"}) but discards the
// body, so a client's speed is measured without a server's disk in the way.
// Runs as its own process, so the client and the sink never share an event loop.
//   PS_SHARED_SECRET=s PORT=0 node bench/sink.mjs   # prints "listening PORT" on stdout
import { createServer } from 'node:http';

const secret = process.env.PS_SHARED_SECRET ?? '';
if (!secret) {
  process.stderr.write('sink: PS_SHARED_SECRET must be set\n');
  process.exit(2);
}
const COOKIE = 'sharedSecret=bench-sink';

const server = createServer((req, res) => {
  const reply = (status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
  if (req.method === 'GET' && req.url === '/') return reply(200, '{}');
  if (req.method === 'POST' && req.url === '/api/auth') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let key: unknown;
      try { key = JSON.parse(Buffer.concat(chunks).toString('utf8')).sharedSecretKey; } catch { key = null; }
      if (key !== secret) return reply(401, '{"error":"Incorrect shared secret"}');
      reply(200, '{}', { 'set-cookie': `${COOKIE}; Path=/; HttpOnly` });
    });
    return;
  }
  if (req.method === 'POST' && req.url?.startsWith('/api/entry')) {
    if (!(req.headers.cookie ?? '').split(/;\s*/).includes(COOKIE)) {
      req.resume();
      return reply(401, '{"error":"Authentication required"}');
    }
    let bytes = 0;
    req.on('data', (c: Buffer) => { bytes += c.length; });
    req.on('end', () => reply(200, `{"id":"sink${String(bytes % 1e6).padStart(6, '0')}"}\n`));
    return;
  }
  req.resume();
  reply(404, '{"error":"not found"}');
});
server.requestTimeout = 0;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : ''}\n`);
});
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(); process.exit(0); });
