# One image for every Lading app; the command picks the app (`serve` alone = all in one).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production NX_DAEMON=false LADING_DATA_DIR=/data
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.base.json ./
COPY scripts/lading.js scripts/build.js scripts/healthcheck.js scripts/
COPY apps apps
COPY libs libs
RUN node scripts/build.js
# The embedded mode's data folder (a volume mounted here starts with this owner); split mode
# writes nothing here, nor anywhere but /tmp, so its containers run with a read-only root.
RUN mkdir -p /data && chown 1000:1000 /data
# The base image's `node` user, by number, so Kubernetes can verify runAsNonRoot
# (k8s/ sets runAsUser/runAsGroup 1000 to match).
USER 1000:1000
EXPOSE 5000
ENTRYPOINT ["node", "scripts/lading.js"]
CMD ["serve"]
