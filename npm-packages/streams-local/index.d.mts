export type {
  DurableStreamsLocalExports,
  DurableStreamsLocalServer,
  StartLocalDurableStreamsServerOptions,
  LocalServerErrorCode,
  LocalServerError,
  OriginalErrorCode,
} from "./index.js";
import type { StartLocalDurableStreamsServerOptions, DurableStreamsLocalServer } from "./index.js";
export declare function startLocalDurableStreamsServer(
  opts?: StartLocalDurableStreamsServerOptions,
): Promise<DurableStreamsLocalServer>;
declare const _default: { startLocalDurableStreamsServer: typeof startLocalDurableStreamsServer };
export default _default;
