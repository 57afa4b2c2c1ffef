// express@4 installed under the alias "express4" (package.json): the same typings as express.
declare module 'express4' {
  export * from 'express';
  export { default } from 'express';
}

// express-session ships no types (DefinitelyTyped has them); the tests need only its default export.
declare module 'express-session' {
  const session: (options: Record<string, unknown>) => import('express').RequestHandler;
  export default session;
}

// koa@2 installed under the alias "koa2": the same typings as koa.
declare module 'koa2' {
  export * from 'koa';
  export { default } from 'koa';
}
