import { Injectable } from '@nestjs/common';

/** Whether this process should get traffic; it says no from the first moment of shutdown. */
@Injectable()
export class Readiness {
  private stopping = false;

  get shuttingDown(): boolean {
    return this.stopping;
  }

  beginShutdown(): void {
    this.stopping = true;
  }
}
