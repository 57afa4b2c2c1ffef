// The eight front doors of the HTTP contract suites — createHandler, the
// Express middleware on Express 5 and on Express 4, the Fastify plugin, the
// Web fetch-handler wrapper, the Koa middleware on Koa 3 and on Koa 2, the
// Hono middleware — each a real server on 127.0.0.1:0, and an undici client
// for them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import express5 from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import Koa from 'koa';
import Koa2 from 'koa2';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { serve as serveHono, type ServerType } from '@hono/node-server';
import { createHandler, type HandlerOptions, type Session, type SessionStore } from '../src/index.ts';
import { sessions } from '../src/http/express.ts';
import { fastifySessions } from '../src/http/fastify.ts';
import { withSessions, type WebSessionsOptions } from '../src/http/web.ts';
import { sessions as koaSessions, type KoaSessionsOptions } from '../src/http/koa.ts';
import { sessions as honoSessions, type HonoSessionsOptions, type SessionEnv } from '../src/http/hono.ts';

/** Closes what the doors started: call it in the suite's after hook. */
export const closers: Array<() => Promise<void>> = [];

export async function closeDoors(): Promise<void> {
  for (const close of closers.splice(0)) await close();
}

/** A framework-neutral route: what the handler does with its session, and what it answers. */
export type Route = (
  session: Session,
  query: URLSearchParams,
) => Promise<{ status?: number; body: unknown }> | { status?: number; body: unknown };
export type Door = 'createHandler' | 'express 5' | 'express 4' | 'fastify' | 'web' | 'koa 3' | 'koa 2' | 'hono';
export const DOORS: Door[] = ['createHandler', 'express 5', 'express 4', 'fastify', 'web', 'koa 3', 'koa 2', 'hono'];

/** A Hono app on @hono/node-server, on 127.0.0.1:0. */
export async function listenHono(fetch: (request: Request) => Response | Promise<Response>): Promise<string> {
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve) => {
    server = serveHono({ fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port));
  });
  closers.push(
    () =>
      new Promise((resolve) => {
        const node = server as Server;
        node.closeAllConnections();
        node.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${port}`;
}

/**
 * A fetch handler on node:http, as a Node server for Web-standard handlers
 * does (@hono/node-server, Next.js): the request as a Web Request (https:
 * when the socket is TLS), the Response written back, Set-Cookie lines one
 * by one.
 */
export function nodeToFetch(handler: (request: Request) => Promise<Response>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined) continue;
        for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const request = new Request(`${scheme}://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        ...(hasBody ? { body: Buffer.concat(chunks) } : {}),
      });
      const response = await handler(request);
      const out: Record<string, string | string[]> = {};
      response.headers.forEach((value, name) => {
        if (name !== 'set-cookie') out[name] = value;
      });
      const cookies = response.headers.getSetCookie();
      if (cookies.length > 0) out['set-cookie'] = cookies;
      res.writeHead(response.status, out);
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      res.destroy(error as Error);
    }
  };
}

export async function listenNode(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function serve(door: Door, route: Route, options: HandlerOptions, store: SessionStore): Promise<string> {
  const quiet = { onError: () => {}, ...options };
  if (door === 'createHandler') {
    return listenNode(
      createServer(
        createHandler(
          store,
          async (req, res, session) => {
            const out = await route(session, new URL(req.url!, 'http://x').searchParams);
            res.statusCode = out.status ?? 200;
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify(out.body));
          },
          quiet,
        ),
      ),
    );
  }
  if (door === 'express 5' || door === 'express 4') {
    const web = (door === 'express 5' ? express5 : express4)();
    web.use(sessions(store, quiet));
    web.use(async (req, res, next) => {
      try {
        const out = await route(req.session, new URL(req.url, 'http://x').searchParams);
        res.status(out.status ?? 200).json(out.body);
      } catch (error) {
        next(error);
      }
    });
    web.use((error: Error & { status?: number }, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
      res.status(error.status ?? 500).json({ error: error.message });
    });
    return listenNode(createServer(web));
  }
  if (door === 'web') {
    return listenNode(
      createServer(
        nodeToFetch(
          withSessions(
            store,
            async (request, session) => {
              const out = await route(session, new URL(request.url).searchParams);
              return Response.json(out.body, { status: out.status ?? 200 });
            },
            quiet as unknown as WebSessionsOptions,
          ),
        ),
      ),
    );
  }
  if (door === 'koa 3' || door === 'koa 2') {
    const koa = door === 'koa 3' ? new Koa() : new Koa2();
    koa.silent = true;
    koa.use(koaSessions(store, quiet as unknown as KoaSessionsOptions));
    koa.use(async (ctx) => {
      const out = await route(ctx.session, new URL(ctx.url, 'http://x').searchParams);
      ctx.status = out.status ?? 200;
      ctx.type = 'json';
      ctx.body = JSON.stringify(out.body);
    });
    return listenNode(createServer(koa.callback()));
  }
  if (door === 'hono') {
    const hono = new Hono<SessionEnv>();
    hono.use(honoSessions(store, quiet as unknown as HonoSessionsOptions));
    hono.all('*', async (c) => {
      const out = await route(c.var.session, new URL(c.req.url).searchParams);
      return c.json(out.body, (out.status ?? 200) as 200);
    });
    hono.onError((error, c) => (error instanceof HTTPException ? error.getResponse() : c.json({ error: error.message }, 500)));
    return listenHono(hono.fetch);
  }
  const fastify = Fastify();
  await fastify.register(fastifySessions, { store, ...quiet });
  fastify.all('/*', async (request, reply) => {
    const out = await route(request.session, new URL(request.url, 'http://x').searchParams);
    reply.code(out.status ?? 200);
    return out.body;
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => fastify.close());
  return `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
}

export interface Reply {
  status: number;
  body: any;
  cookies: string[];
}

export async function get(url: string, cookie?: string, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await request(url, { headers: { ...headers, ...(cookie ? { cookie } : {}) }, headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await response.body.text();
  const raw = response.headers['set-cookie'];
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* a bare error page */
  }
  return { status: response.statusCode, body, cookies: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw] };
}

export const cookieOf = (reply: Reply) => reply.cookies.find((line) => line.startsWith('sid='))?.split(';')[0];
export const idOf = (cookie: string) => cookie.slice(4);
