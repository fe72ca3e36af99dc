# gcs-bq-ingest: the `ingest` Functions Framework target on Cloud Run (INGEST_BACKEND=gcp).
# Plain Dockerfile syntax: builds with BuildKit or with Docker's legacy builder.

# Build stage: compile the TypeScript with the dev dependencies.
FROM node:22.23.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# The routing configuration, when the repository has one: ingest.yaml and the BigQuery schema files
# it names under schemas/, gathered into a folder that always exists (a COPY of a file that may be
# missing needs BuildKit). Without them the built-in defaults apply (see the README).
RUN mkdir -p runtime-config \
    && for f in ingest.yaml schemas; do if [ -e "$f" ]; then cp -R "$f" runtime-config/; fi; done

# Runtime stage: Node 22 LTS, production dependencies and the compiled service only.
FROM node:22.23.3-bookworm-slim
ENV NODE_ENV=production \
    INGEST_BACKEND=gcp \
    PORT=8080
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
# --omit=optional leaves out DuckDB's native library (about 70 MB, an optional dependency of its
# bindings and the only optional production package): the local backend needs it, the gcp backend
# never loads it.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/runtime-config/ ./
# Compile the service's modules once, here, instead of at every cold start: with Node 22's compile
# cache, loading them took about 185 ms instead of 255 ms (measured on this Node version). The
# service is also started once and stopped, so that the Functions Framework's own modules are cached.
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN node -e "require('./dist/src/stores/gcs'); require('./dist/src/warehouses/bigquery'); require('./dist/src/index')" \
    && node -e "const c = require('node:child_process').spawn(process.execPath, ['node_modules/@google-cloud/functions-framework/build/src/main.js', '--target=ingest', '--signature-type=http'], { stdio: 'inherit', env: { ...process.env, PORT: '8079', GOOGLE_CLOUD_PROJECT: 'warm-up', METADATA_SERVER_DETECTION: 'none' } }); const poll = setInterval(() => require('node:http').get('http://127.0.0.1:8079/health', (r) => { r.resume(); clearInterval(poll); c.kill('SIGTERM'); }).on('error', () => {}), 100); setTimeout(() => { c.kill('SIGKILL'); process.exit(1); }, 30000).unref(); c.on('exit', (code) => process.exit(code ?? 1))" \
    && chown -R node:node /app/.node-compile-cache
USER node
EXPOSE 8080
# The Functions Framework's own entry point, without npx: the same as
# `functions-framework --target=ingest --signature-type=http`; package.json `main` names the module.
CMD ["node", "node_modules/@google-cloud/functions-framework/build/src/main.js", "--target=ingest", "--signature-type=http"]
