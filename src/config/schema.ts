import { Type, type Static } from 'typebox';

/**
 * The one schema every setting of lessoncast is checked against.
 * `config/default.json` must hold every key with its default; environment
 * overrides are derived from the key paths (see `envName`).
 */
/** A bitrate setting in bits per second. */
const bitrate = (minimum: number, maximum: number, description: string) => Type.Integer({ minimum, maximum, description });
/** How many of something one participant may hold open; past it, LIMIT_REACHED. */
const participantCap = (maximum: number, what: string) =>
  Type.Integer({ minimum: 1, maximum, description: `${what} one participant may hold open (LIMIT_REACHED)` });

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

export const ConfigSchema = Type.Object(
  {
    nodeId: Type.String({ description: 'Identity of this node in live state; empty = hostname-pid', maxLength: 64 }),
    log: Type.Object(
      {
        level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
      },
      { additionalProperties: false },
    ),
    http: Type.Object(
      {
        host: Type.String({ minLength: 1, description: 'Interface the HTTP/WebSocket server binds' }),
        port: Port,
        publicUrl: Type.String({ description: 'URL users reach; empty = http://host:port, or https://host:port with http.tls' }),
        maxMessageBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, description: 'Largest WebSocket frame accepted' }),
        authTimeoutSeconds: Type.Integer({
          minimum: 1,
          maximum: 300,
          description: 'A WebSocket (/ws, /api/live/feed) that has not authenticated by then is closed (4408)',
        }),
        maxUnauthenticatedPerAddress: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          description: 'WebSockets one remote address may hold open before authenticating; more are closed at once (4429)',
        }),
        tls: Type.Object(
          {
            certFile: Type.String({
              description: 'PEM certificate chain (server first); with keyFile, serves HTTPS and WSS; both empty = plain HTTP',
            }),
            keyFile: Type.String({ description: 'PEM private key (unencrypted) of certFile' }),
            hstsMaxAgeSeconds: Type.Integer({
              minimum: 0,
              maximum: 63_072_000,
              description: 'max-age of Strict-Transport-Security, sent on every HTTPS response (0 tells browsers to forget it)',
            }),
          },
          { additionalProperties: false },
        ),
        redirectPort: Type.Integer({
          minimum: 0,
          maximum: 65535,
          description: 'A plain-HTTP listener on http.host at this port that only redirects (308) to the https publicUrl; 0 = none',
        }),
        trustProxy: Type.Array(Type.String({ minLength: 1 }), {
          maxItems: 64,
          description:
            'Addresses or CIDRs of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (also loopback, linklocal, uniquelocal); [] = none',
        }),
      },
      { additionalProperties: false },
    ),
    media: Type.Object(
      {
        workers: Type.Integer({ minimum: 0, maximum: 256, description: 'mediasoup workers; 0 = one per core' }),
        workerBin: Type.String({
          description:
            "Path of mediasoup-worker; empty = MEDIASOUP_WORKER_BIN, then the worker setup recorded in .lessoncast/worker-bin, then mediasoup's own",
        }),
        listenIp: Type.String({ minLength: 1, description: 'Address the WebRTC ports bind' }),
        announcedAddress: Type.String({ description: 'Address given to clients in ICE candidates; empty = listenIp' }),
        webRtcServerPort: Type.Integer({
          minimum: 0,
          maximum: 65535,
          description: 'Worker i listens on this port + i (UDP and TCP); 0 = any free port',
        }),
        rtcMinPort: Type.Integer({ minimum: 1024, maximum: 65535 }),
        rtcMaxPort: Type.Integer({ minimum: 1024, maximum: 65535 }),
        consumersPerRouter: Type.Integer({
          minimum: 1,
          description: 'A lesson router past this many consumers spills onto another worker',
        }),
        udpRecvBufferBytes: Type.Integer({
          minimum: 0,
          maximum: 1 << 30,
          description:
            "Receive buffer of each worker's WebRTC UDP socket, which every publisher of the worker shares; the kernel caps it at net.core.rmem_max. 0 = the kernel default (~208 KB)",
        }),
        // scripts/worker/patches/3.32.2/0001-udp-send-batch.patch; docs/forwarding.md "Levers".
        udpSendBatch: Type.Boolean({
          description:
            "Write the copies of one received packet that a worker sends through one UDP socket (every classroom on its WebRtcServer) with one sendmmsg() instead of one system call each; needs lessoncast's worker build (scripts/build-worker.sh), else has no effect",
        }),
        workerLogLevel: Type.Union([Type.Literal('debug'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('none')]),
        // mediasoup's own bandwidth estimation (3.32) per WebRTC transport. Outgoing = towards a
        // classroom (what simulcast layer selection follows); incoming = from a publisher.
        enableBwe: Type.Boolean({
          description:
            "Estimate each WebRTC transport's bandwidth (transport-cc / REMB) so classrooms get the simulcast layer their link carries",
        }),
        initialOutgoingBitrate: bitrate(100_000, 100_000_000, 'Estimate a classroom transport starts from (bps), before feedback arrives'),
        minOutgoingBitrate: bitrate(0, 100_000_000, 'Floor of the estimate towards a classroom (bps); 0 = none'),
        maxOutgoingBitrate: bitrate(0, 1_000_000_000, 'Ceiling of what one classroom transport is sent (bps); 0 = none'),
        maxIncomingBitrate: bitrate(0, 1_000_000_000, 'Ceiling asked of each publisher (bps, through REMB/transport-cc); 0 = none'),
        // lessoncast's weak-link policy per receiver (docs/links.md), on top of mediasoup's own layer choice.
        links: Type.Object(
          {
            enabled: Type.Boolean({ description: 'Apply the weak-link policy (floor layer, audio-first pause) to every WebRTC receiver' }),
            checkSeconds: Type.Number({
              minimum: 0.2,
              maximum: 60,
              description: "How often each receiver's bandwidth estimate is read (one stats request per receive transport)",
            }),
            floorBelowKbps: Type.Integer({
              minimum: 0,
              maximum: 100_000,
              description: 'Below this estimate a receiver is held at media.links.floorSpatialLayer; 0 = never',
            }),
            floorSpatialLayer: Type.Integer({
              minimum: 0,
              maximum: 2,
              description: 'The simulcast layer a receiver under pressure is held at',
            }),
            pauseBelowKbps: Type.Integer({
              minimum: 0,
              maximum: 100_000,
              description: "Below this estimate (for holdSeconds) a receiver's video is paused and its audio kept; 0 = never",
            }),
            resumeAboveKbps: Type.Integer({
              minimum: 0,
              maximum: 100_000,
              description: 'Paused video comes back (at the floor layer) once the estimate stays above this for holdSeconds',
            }),
            holdSeconds: Type.Number({
              minimum: 0,
              maximum: 600,
              description: 'How long an estimate must stay below (or above) a threshold before the policy acts',
            }),
            retrySeconds: Type.Number({
              minimum: 1,
              maximum: 3600,
              description:
                'Paused this long without the estimate recovering, video is tried again at the floor layer (the wait doubles on each failed try, up to 8 times)',
            }),
            keyFrameRequestDelayMs: Type.Integer({
              minimum: 0,
              maximum: 10_000,
              description:
                "mediasoup's keyFrameRequestDelay on every video producer: at most one keyframe request per stream per this many ms is forwarded to the publisher; 0 = no delay",
            }),
            cameraPriority: Type.Integer({
              minimum: 1,
              maximum: 255,
              description: "Weight of a camera consumer in its transport's bitrate share",
            }),
            screenPriority: Type.Integer({
              minimum: 1,
              maximum: 255,
              description: "Weight of a screen-share consumer in its transport's bitrate share",
            }),
          },
          { additionalProperties: false },
        ),
        // ICE-TCP apart from UDP: schools that block UDP reach the WebRtcServer's TCP socket, which
        // may sit on its own address (443 there) or behind a port mapping (docs/turn.md).
        iceTcp: Type.Object(
          {
            listenIp: Type.String({ description: 'Address the ICE-TCP sockets bind; empty = media.listenIp' }),
            announcedAddress: Type.String({
              description: 'Address put in the TCP ICE candidates; empty = iceTcp.listenIp when set, else the UDP announced address',
            }),
            port: Type.Integer({
              minimum: 0,
              maximum: 65535,
              description: "Worker i's ICE-TCP socket listens on this port + i; 0 = the UDP port (media.webRtcServerPort + i)",
            }),
            announcedPort: Type.Integer({
              minimum: 0,
              maximum: 65535,
              description:
                'Port put in the TCP ICE candidates of worker i, + i (a port mapping, e.g. 443 → 44000); 0 = the port it listens on',
            }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    // TURN (coturn) for schools that reach nothing else; docs/turn.md.
    turn: Type.Object(
      {
        urls: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
          maxItems: 16,
          description:
            'TURN server URLs given to every participant (turn:host[:port][?transport=udp|tcp], turns:host[:port]); [] = no TURN',
        }),
        // No maxLength here: a schema error would print the value; load.ts checks it without showing it.
        secret: Type.String({
          description: "coturn's static-auth-secret (>= 32 chars: letters, digits, + / = . _ ~ -); required when urls is set",
        }),
        realm: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9.-]+$', description: "coturn's realm" }),
        credentialTtlSeconds: Type.Integer({
          minimum: 60,
          maximum: 7 * 24 * 3600,
          description: 'Lifetime of the TURN credentials a join gives; an allocation cannot be refreshed past it',
        }),
        relaySchools: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
          maxItems: 100_000,
          description: "School ids (a classroom token's id) whose pages must use iceTransportPolicy 'relay'",
        }),
      },
      { additionalProperties: false },
    ),
    catalog: Type.Object(
      {
        url: Type.String({ description: 'postgres:// URL of the shared catalog; empty = SQLite at sqlitePath (one node)' }),
        sqlitePath: Type.String({ minLength: 1, description: 'The SQLite catalog file when url is empty' }),
        connectTimeoutSeconds: Type.Integer({
          minimum: 1,
          maximum: 60,
          description: 'Bound on connecting and (twice it) on one statement',
        }),
        maxConnections: Type.Integer({ minimum: 1, maximum: 200, description: 'PostgreSQL connections this node holds at most' }),
        retrySeconds: Type.Integer({
          minimum: 1,
          maximum: 300,
          description: 'While the database is away: how often lesson changes are retried and revocations reloaded',
        }),
        ledgerWriteSeconds: Type.Integer({
          minimum: 5,
          maximum: 600,
          description: "How often a running lesson's per-school ledger rows are written (a crash loses at most this much)",
        }),
      },
      { additionalProperties: false },
    ),
    redis: Type.Object(
      {
        url: Type.String({ description: 'redis:// URL; empty = in-process live state' }),
        keyPrefix: Type.String(),
        heartbeatSeconds: Type.Integer({ minimum: 1, maximum: 300 }),
        nodeTtlSeconds: Type.Integer({ minimum: 2, maximum: 3600 }),
      },
      { additionalProperties: false },
    ),
    // Many nodes (docs/cluster.md): a lesson spans nodes (origin and edges) through Redis and a shared catalog.
    cluster: Type.Object(
      {
        enabled: Type.Boolean({
          description: 'Nodes sharing redis.url and catalog.url serve each lesson together: one origin, any node a way in',
        }),
        secret: Type.String({
          description: 'Signs every message between nodes (>= 32 chars, the same on every node); required when enabled',
        }),
        leaseSeconds: Type.Integer({
          minimum: 2,
          maximum: 120,
          description: "A lesson's origin holds its lease this long without renewing (renewed every third of it)",
        }),
        pipeAddress: Type.String({
          maxLength: 255,
          description: "Address other nodes reach this node's media pipes at (the data-centre network); empty = media.announcedAddress",
        }),
      },
      { additionalProperties: false },
    ),
    monitor: Type.Object(
      {
        sampleSeconds: Type.Integer({
          minimum: 1,
          maximum: 300,
          description: 'Quality sampling period (getStats of every transport, consumer and producer)',
        }),
        statsConcurrency: Type.Integer({ minimum: 1, maximum: 64, description: 'getStats requests in flight at once while sampling' }),
        silentSeconds: Type.Integer({
          minimum: 2,
          maximum: 600,
          description: 'A school whose media transport receives nothing (no RTCP, no ICE) this long counts as unreachable',
        }),
        alerts: Type.Object(
          {
            lossPct: Type.Number({ minimum: 0, maximum: 100, description: 'Alert when a school loses more than this % of packets…' }),
            lossSeconds: Type.Integer({ minimum: 0, maximum: 3600, description: '…for at least this long' }),
            disconnectedSeconds: Type.Integer({
              minimum: 0,
              maximum: 3600,
              description: 'Alert when a school is unreachable this long (0 = at once)',
            }),
            recordingFault: Type.Boolean({ description: 'Alert on recording faults' }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    metrics: Type.Object(
      {
        token: Type.String({ description: 'Bearer token a scrape of /metrics must send (>= 16 chars); empty = /metrics is open' }),
      },
      { additionalProperties: false },
    ),
    recording: Type.Object(
      {
        dir: Type.String({ minLength: 1 }),
        enabledByDefault: Type.Boolean(),
        segmentSeconds: Type.Integer({ minimum: 1, maximum: 30 }),
        ffmpegPath: Type.String({ description: 'empty = FFMPEG_PATH, then ffmpeg-static, then ffmpeg on PATH' }),
        retentionDays: Type.Integer({ minimum: 0, description: '0 = keep forever' }),
        oneWayAccessSeconds: Type.Integer({
          minimum: 20,
          maximum: 3600,
          description: "Lifetime of a one-way viewer's capability for the live playlist (oneWayStream); the page renews it at half-life",
        }),
        indexScanSeconds: Type.Integer({
          minimum: 0,
          maximum: 86400,
          description: 'How often the archive index is reconciled with the recordings folder; 0 = only at start',
        }),
      },
      { additionalProperties: false },
    ),
    auth: Type.Object(
      {
        tokenSecret: Type.String({ description: 'HS256 secret (>= 32 chars); empty = generated once into secretFile' }),
        secretFile: Type.String({ minLength: 1 }),
        tokenTtlSeconds: Type.Integer({ minimum: 60, maximum: 31 * 24 * 3600 }),
        maxTokenTtlSeconds: Type.Integer({
          minimum: 600,
          maximum: 366 * 24 * 3600,
          description: 'Tokens living longer (exp - iat, or exp - now) are refused, whoever signed them',
        }),
        maxFailuresPerAddress: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          description:
            'Failed authentications (REST, sockets, access links) one address may make per window; past it every attempt is refused (RATE_LIMITED)',
        }),
        failureWindowSeconds: Type.Integer({ minimum: 1, maximum: 86_400, description: 'The window of maxFailuresPerAddress' }),
        deviceSessionTtlSeconds: Type.Integer({
          minimum: 300,
          maximum: 86_400,
          description: 'Life of the session token a board gets for its device credential (POST /api/devices/session)',
        }),
      },
      { additionalProperties: false },
    ),
    lessons: Type.Object(
      {
        reconnectGraceSeconds: Type.Integer({ minimum: 0, maximum: 3600 }),
        abandonAfterMinutes: Type.Integer({
          minimum: 0,
          maximum: 10080,
          description:
            'A lesson nobody has been in for this long (since it opened, its slot ended, or the last participant left) ends as abandoned; 0 = never',
        }),
        maxFloorHolders: Type.Integer({ minimum: 1, maximum: 16 }),
        maxTransportsPerParticipant: participantCap(64, 'WebRTC transports'),
        maxProducersPerParticipant: participantCap(64, 'Producers'),
        maxConsumersPerParticipant: participantCap(4096, 'Consumers'),
        actionBurst: Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'Lesson actions (hands, floor, media path) one participant may make in a burst…',
        }),
        actionsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1000, description: '…refilled at this rate; past it RATE_LIMITED' }),
      },
      { additionalProperties: false },
    ),
    shutdown: Type.Object(
      {
        timeoutSeconds: Type.Integer({ minimum: 1, maximum: 300 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/**
 * Settings that existed once and are gone: a configuration (file or LESSONCAST_* variable) that
 * still sets one stops the start with this reason, rather than a bare "unknown key" or a silent ignore.
 */
export const RETIRED_SETTINGS: Readonly<Record<string, string>> = {
  'media.liburing':
    'removed with mediasoup 3.32: mediasoup dropped io_uring in 3.20.7 because it cost more CPU than sendto (docs/forwarding.md measured the same here); every packet is now sent with sendto. Delete the key',
};
