/** Where a running local server can be reached. */
export interface DurableStreamsLocalExports {
  /** The server name (default "default"). */
  name: string;
  /** Process id of the prisma-streams binary. */
  pid: number;
  http: {
    /** Base URL, e.g. http://127.0.0.1:53123 (streams live under /v1/stream/). */
    url: string;
    port: number;
  };
  sqlite: {
    /** Absolute path of the server's SQLite database. */
    path: string;
  };
}

export interface DurableStreamsLocalServer {
  exports: DurableStreamsLocalExports;
  /** Stops the server; resolves once its process is gone. Safe to call more than once. */
  close(): Promise<void>;
}

export interface StartLocalDurableStreamsServerOptions {
  /** Server name: letters, digits, ".", "_" and "-"; default "default". */
  name?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to listen on; default "127.0.0.1". */
  hostname?: string;
  /**
   * Require `Authorization: Bearer <authToken>` (at least 16 characters). Only this
   * option turns authentication on: `DS_AUTH_TOKEN` in the environment is ignored.
   */
  authToken?: string;
}

/** Stable error codes of a failed start. */
export type LocalServerErrorCode =
  | "INVALID_ARGUMENT"
  | "NAME_LOCKED"
  | "PORT_IN_USE"
  | "START_FAILED"
  | "START_TIMEOUT"
  | "SPAWN_FAILED"
  | "BINARY_NOT_FOUND";

/** The codes the original package's errors have for the same failures. */
export type OriginalErrorCode = "ELOCKED" | "EADDRINUSE";

export interface LocalServerError extends Error {
  /** The original's code where it has one (`ELOCKED` for NAME_LOCKED, `EADDRINUSE` for PORT_IN_USE), otherwise {@link streamsCode}. */
  code: LocalServerErrorCode | OriginalErrorCode;
  /** This package's code, always. */
  streamsCode: LocalServerErrorCode;
  /** Exit code of the binary, when it exited before becoming ready. */
  exitCode?: number | null;
  /** The end of the binary's stderr, when it exited before becoming ready. */
  stderr?: string;
}

/**
 * Starts a local Durable Streams server (one SQLite file per name) and resolves once it
 * listens. Rejects with a {@link LocalServerError} (name in use, port in use, bad name...).
 */
export declare function startLocalDurableStreamsServer(
  opts?: StartLocalDurableStreamsServerOptions,
): Promise<DurableStreamsLocalServer>;
