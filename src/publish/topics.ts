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
  /** The model rollout's commands (cmd/model/install, cmd/model/rollback). */
  get modelCommandFilter(): string {
    return `${this.base}/cmd/model/+`;
  }
  /** Retained: the model rollout's state (src/rollout/). */
  get modelState(): string {
    return `${this.base}/model/state`;
  }
  commandResponse(name: string): string {
    return `${this.base}/cmd/${name}/response`;
  }
}
