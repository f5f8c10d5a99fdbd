/** Binding a port, with bind failures turned into a ConfigError that names the variable to fix. */
import type * as http from 'http';
import type { AddressInfo } from 'net';
import { ConfigError } from './config';

/** Resolves with the bound port (the real one when `port` is 0). */
export function listen(server: http.Server, host: string, port: number, portVariable: string, hostVariable: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'unknown';
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        reject(new ConfigError(portVariable, `cannot listen on port ${port} (${code === 'EADDRINUSE' ? 'already in use' : 'permission denied'})`));
      } else if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
        reject(new ConfigError(hostVariable, `cannot listen on ${JSON.stringify(host)} (${code === 'EADDRNOTAVAIL' ? 'not an address of this machine' : 'does not resolve'})`));
      } else {
        reject(err);
      }
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
