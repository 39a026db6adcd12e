/** The topic contract: everything under <prefix>/<deviceId>/. */
export class Topics {
  readonly base: string;
  constructor(prefix: string, deviceId: string) {
    this.base = `${prefix}/${deviceId}`;
  }
  get status(): string {
    return `${this.base}/status`;
  }
  get stats(): string {
    return `${this.base}/stats`;
  }
  result(camera: string): string {
    return `${this.base}/${camera}/result`;
  }
  event(camera: string): string {
    return `${this.base}/${camera}/event`;
  }
  command(name: string): string {
    return `${this.base}/cmd/${name}`;
  }
  /** What the daemon subscribes to for commands. */
  get commandFilter(): string {
    return `${this.base}/cmd/+`;
  }
  commandResponse(name: string): string {
    return `${this.base}/cmd/${name}/response`;
  }
}
