// A WebSocket that pushes whole snapshots (the pipeline view): reconnects with backoff and
// jitter; every frame replaces the last, so nothing needs resuming.
const MIN_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;

export class SnapshotStream {
  constructor(path, { onSnapshot, onStatus }) {
    this.path = path;
    this.onSnapshot = onSnapshot;
    this.onStatus = onStatus || (() => {});
    this.delay = MIN_DELAY_MS;
    this.closed = false;
    this.frames = 0;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${this.path}`);
    this.socket = socket;
    this.onStatus("connecting");
    socket.onmessage = (message) => {
      this.delay = MIN_DELAY_MS;
      this.frames += 1;
      this.onStatus("live");
      this.onSnapshot(JSON.parse(message.data));
    };
    socket.onclose = () => {
      if (this.socket !== socket || this.closed) return;
      this.onStatus("down");
      const wait = this.delay * (0.75 + Math.random() * 0.5);
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
      setTimeout(() => this.connect(), wait);
    };
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}
