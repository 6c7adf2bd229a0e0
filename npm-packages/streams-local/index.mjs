import cjs from "./index.cjs";

export const startLocalDurableStreamsServer = cjs.startLocalDurableStreamsServer;
export default { startLocalDurableStreamsServer };
