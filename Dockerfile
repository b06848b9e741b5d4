# The registry worker image (docker-compose.yml's `worker` service).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
USER node
CMD ["node", "bin/taskmgr.js", "worker"]
