// The live change stream: one WebSocket, reconnecting with backoff, resuming from the last id.
//
// Every frame of type "change" has a stream id; the last one handled is remembered, and a
// reconnect subscribes with {after: lastSeenId}, so the server replays what was missed first.
// Frames are also checked here: an id not after the last one is dropped (never applied twice).
const MIN_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;

function after(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

export class LiveStream {
  constructor({ topics = ["*"], correlationId = null, after = null, onChange, onReset, onStatus }) {
    this.subscription = { topics, correlationId, after };
    this.lastSeenId = after;
    this.onChange = onChange;
    this.onReset = onReset || (() => {});
    this.onStatus = onStatus || (() => {});
    this.delay = MIN_DELAY_MS;
    this.closed = false;
    this.received = [];   // raw change frames as they arrived (for the end-to-end test)
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/stream`;
    const socket = new WebSocket(url);
    this.socket = socket;
    this.onStatus("connecting");
    socket.onopen = () => {
      const message = { action: "subscribe", topics: this.subscription.topics };
      if (this.subscription.correlationId) message.correlationId = this.subscription.correlationId;
      if (this.lastSeenId) message.after = this.lastSeenId;
      socket.send(JSON.stringify(message));
    };
    socket.onmessage = (message) => this.handle(JSON.parse(message.data));
    socket.onclose = () => {
      if (this.socket !== socket || this.closed) return;
      this.onStatus("down");
      const wait = this.delay * (0.75 + Math.random() * 0.5);  // jitter: not all at once
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
      setTimeout(() => this.connect(), wait);
    };
  }

  handle(frame) {
    if (frame.type === "change") {
      this.received.push({ id: frame.id, intentId: frame.intentId, seq: frame.seq });
      if (this.lastSeenId && !after(frame.id, this.lastSeenId)) return;
      this.lastSeenId = frame.id;
      this.onChange(frame);
    } else if (frame.type === "subscribed") {
      if (!this.lastSeenId) this.lastSeenId = frame.after;
    } else if (frame.type === "caught_up") {
      this.delay = MIN_DELAY_MS;
      this.onStatus("live");
    } else if (frame.type === "reset") {
      this.onReset(frame.reason);
    } else if (frame.type === "error") {
      console.error("stream error", frame);
    }
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}
