// Shared by the benchmark servers: the same routes and the same JSON for all.
//   GET /login  a new session with n = 0 (its cookie is the client's session)
//   GET /r      R: read the session's counter
//   GET /w      W: read-modify-write the counter
//   GET /__stats  process CPU time (µs) and RSS, outside any session code
export const SECRET = 'bench secret: the same for every server, 32+ chars long';

export function stats() {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return JSON.stringify({
    cpu: cpu.user + cpu.system,
    rss: memory.rss,
    heapTotal: memory.heapTotal,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
  });
}

/** Prints the port the loader should use, once listening. */
export function ready(server) {
  const address = server.address();
  process.stdout.write(`READY ${address.port}\n`);
}

export const port = Number(process.env.PORT ?? 0);
export const database = process.env.DATABASE;
