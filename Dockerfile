# One image for every part; the command picks the part (vpp broker|ingest|control|dispatch|sim|up).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# better-sqlite3 compiles its native addon at install time.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci builds the dashboard bundle (the prepare script), from its sources and protocol's.
COPY protocol ./protocol
COPY dashboard ./dashboard
RUN npm ci --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production VPP_HOST=0.0.0.0 VPP_DATA_DIR=/data
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/dashboard/dist ./dashboard/dist
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY cli ./cli
COPY protocol ./protocol
COPY broker ./broker
COPY ingest ./ingest
COPY control ./control
COPY notify ./notify
COPY dispatch ./dispatch
COPY devices-sim ./devices-sim
COPY store ./store
# A named volume takes the ownership of this folder on first use.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
EXPOSE 1883 8080
USER node
ENTRYPOINT ["node", "bin/vpp.js"]
CMD ["up"]
