// The live stream through the console. EventSource sends the session cookie; the last id is
// kept here and sent as ?last_event_id= on every reconnect, so a dropped connection (or a
// refused one, which ends an EventSource for good) resumes where it left off.
export class Live {
  constructor(onEvent, onState) {
    this.onEvent = onEvent; this.onState = onState || (() => {});
    this.lastId = null; this.source = null; this.closed = false; this.delay = 500; this.timer = null;
    this.connects = 0;
  }
  start() { this.closed = false; this.open(); return this; }
  open() {
    const url = new URL("/live", location.origin);
    if (this.lastId) url.searchParams.set("last_event_id", this.lastId);
    const src = new EventSource(url);
    this.source = src;
    this.connects += 1;
    src.onopen = () => { this.delay = 500; this.onState("connected", this.connects); };
    const handle = (ev) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId;
      let data = {};
      try { data = ev.data ? JSON.parse(ev.data) : {}; } catch { data = {}; }
      this.onEvent(ev.type, data, ev.lastEventId || null);
    };
    for (const name of ["pathway.status", "careplan.updated", "removed", "snapshot", "changed", "ready", "message"]) {
      src.addEventListener(name, handle);
    }
    src.onerror = () => {
      // Let no automatic reconnect happen without our last id: close and reopen ourselves.
      src.close();
      if (this.closed) return;
      this.onState("reconnecting", this.connects);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }
  stop() { this.closed = true; clearTimeout(this.timer); if (this.source) this.source.close(); }
}
