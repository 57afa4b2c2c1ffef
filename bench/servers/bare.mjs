// The ceiling: node:http with no sessions at all, answering the same JSON.
import { createServer } from 'node:http';
import { port, ready, stats } from './common.mjs';

const server = createServer((req, res) => {
  if (req.url === '/__stats') return res.end(stats());
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ n: req.url === '/w' ? 1 : 0 }));
});
server.listen(port, '127.0.0.1', () => ready(server));
