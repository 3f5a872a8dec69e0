# One image for every Lading app; the command picks the app (`serve` alone = all in one).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production NX_DAEMON=false LADING_DATA_DIR=/data
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.base.json ./
COPY scripts/lading.js scripts/build.js scripts/
COPY apps apps
COPY libs libs
RUN node scripts/build.js
USER node
EXPOSE 5000
ENTRYPOINT ["node", "scripts/lading.js"]
CMD ["serve"]
