/**
 * The pod's volumes as local folders, filled the way the kubelet fills them, and each container's
 * mounts mapped onto those folders.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Container, PodSpec, PodSpecError } from './manifest';

/** Files by key, per Secret or ConfigMap name: what the API server would hold. */
export type ObjectFiles = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** What a projected serviceAccountToken source asks the API server for. */
export interface TokenRequest {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  /** undefined: the API server's own audience. */
  readonly audience: string | undefined;
  readonly expirationSeconds: number;
}

export interface VolumeSources {
  /** Files of each Secret, by secretName, then key. @default none */
  readonly secrets?: ObjectFiles;
  /** Files of each ConfigMap, by name, then key. @default none */
  readonly configMaps?: ObjectFiles;
  /** Mints the token of a projected serviceAccountToken source (the stand-in API server). @default none: such a volume is refused */
  readonly mintServiceAccountToken?: (req: TokenRequest) => Promise<string>;
}

/** The pod's identity, for the tokens of projected volumes. */
export interface PodIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
}

/** Where a container path is mounted, and the local folder standing in for the volume there. */
export interface LocalMount {
  readonly mountPath: string;
  readonly dir: string;
}

/** The kubelet's name of the symlink to the current payload folder. */
export const DATA_LINK = '..data';

/**
 * Write files the way the kubelet's atomic writer does: into a fresh timestamped folder, then swap
 * the `..data` symlink to it in one rename. Each key is a symlink `key -> ..data/key`.
 * Call again on the same folder to rotate the content, as a Secret update does.
 */
export function writeAtomicVolume(dir: string, files: Readonly<Record<string, string>>, mode = 0o644): void {
  for (const key of Object.keys(files)) {
    if (key.includes('/') || key.startsWith('..')) throw new PodSpecError(`volume file ${key}`, 'must be a plain file name');
  }
  fs.mkdirSync(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, '_')}${process.hrtime.bigint() % 1_000_000n}`;
  const payload = path.join(dir, stamp);
  fs.mkdirSync(payload);
  for (const [key, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(payload, key), content, { mode });
    // The umask may have narrowed the mode given to writeFileSync.
    fs.chmodSync(path.join(payload, key), mode);
  }
  const dataLink = path.join(dir, DATA_LINK);
  const previous = fs.existsSync(dataLink) ? fs.readlinkSync(dataLink) : undefined;
  const tmpLink = path.join(dir, `${DATA_LINK}_tmp`);
  fs.rmSync(tmpLink, { force: true });
  fs.symlinkSync(stamp, tmpLink);
  fs.renameSync(tmpLink, dataLink);
  // Visible names: add new keys, drop removed ones.
  for (const key of Object.keys(files)) {
    const link = path.join(dir, key);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(DATA_LINK, key), link);
  }
  for (const entry of fs.readdirSync(dir)) {
    if (!entry.startsWith('..') && !Object.hasOwn(files, entry)) fs.rmSync(path.join(dir, entry), { force: true });
  }
  if (previous) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
}

/** The files of one Secret or ConfigMap source (all keys, or its items). */
function objectFiles(
  field: string,
  kind: 'Secret' | 'ConfigMap',
  name: string,
  source: { items?: { key: string; path: string }[]; optional?: boolean },
  sources: VolumeSources,
): Record<string, string> {
  const all = kind === 'Secret' ? sources.secrets : sources.configMaps;
  const data = all && Object.hasOwn(all, name) ? all[name] : undefined;
  if (!data && source.optional !== true) throw new PodSpecError(field, `${kind} ${name} was not provided to the local runner`);
  const files: Record<string, string> = {};
  if (source.items) {
    for (const item of source.items) {
      if (!(data && Object.hasOwn(data, item.key))) throw new PodSpecError(`${field} items`, `key ${item.key} is not in ${name}`);
      files[item.path] = data[item.key];
    }
  } else Object.assign(files, data ?? {});
  return files;
}

/** Projected service-account tokens, minted before the volumes are written: `<volume>/<path>` -> token. */
export type ProjectedTokens = Readonly<Record<string, string>>;

/** Ask the minter for the token of every serviceAccountToken projection of the pod, as the kubelet asks the API server. */
export async function mintProjectedTokens(spec: PodSpec, identity: PodIdentity, mint: VolumeSources['mintServiceAccountToken']): Promise<ProjectedTokens> {
  const tokens: Record<string, string> = {};
  for (const volume of spec.volumes ?? []) {
    for (const source of volume.projected?.sources ?? []) {
      if (!source.serviceAccountToken) continue;
      if (mint === undefined) throw new PodSpecError(`volume ${volume.name} serviceAccountToken`, 'needs a token minter (the stand-in API server) given to the local runner');
      const { audience, expirationSeconds = 3600, path: file } = source.serviceAccountToken;
      tokens[`${volume.name}/${file}`] = await mint({ ...identity, audience, expirationSeconds });
    }
  }
  return tokens;
}

/** Map each volume of the pod to a folder under workDir, filled as the kubelet would. Volume name -> folder. */
export function prepareVolumes(spec: PodSpec, workDir: string, sources: VolumeSources, tokens: ProjectedTokens = {}): Record<string, string> {
  const volumes: Record<string, string> = {};
  for (const volume of spec.volumes ?? []) {
    const dir = path.join(workDir, 'volumes', volume.name);
    const field = `volume ${volume.name}`;
    if (volume.secret) {
      // The owner must be able to read: locally the owner is us, in the pod fsGroup makes it readable.
      writeAtomicVolume(dir, objectFiles(field, 'Secret', volume.secret.secretName, volume.secret, sources), (volume.secret.defaultMode ?? 0o644) | 0o400);
    } else if (volume.configMap) {
      writeAtomicVolume(dir, objectFiles(field, 'ConfigMap', volume.configMap.name, volume.configMap, sources), (volume.configMap.defaultMode ?? 0o644) | 0o400);
    } else if (volume.projected) {
      const files: Record<string, string> = {};
      for (const source of volume.projected.sources) {
        if (source.secret) Object.assign(files, objectFiles(field, 'Secret', source.secret.name, source.secret, sources));
        else if (source.configMap) Object.assign(files, objectFiles(field, 'ConfigMap', source.configMap.name, source.configMap, sources));
        else if (source.serviceAccountToken) {
          const key = `${volume.name}/${source.serviceAccountToken.path}`;
          if (!Object.hasOwn(tokens, key)) throw new PodSpecError(`${field} serviceAccountToken`, 'was not minted (mintProjectedTokens)');
          files[source.serviceAccountToken.path] = tokens[key];
        } else throw new PodSpecError(field, 'only secret, configMap and serviceAccountToken projections are supported locally');
      }
      writeAtomicVolume(dir, files, (volume.projected.defaultMode ?? 0o644) | 0o400);
    } else if (volume.emptyDir !== undefined) {
      fs.mkdirSync(dir, { recursive: true });
    } else {
      throw new PodSpecError(field, 'only secret, configMap, projected and emptyDir volumes are supported locally');
    }
    volumes[volume.name] = dir;
  }
  return volumes;
}

/** Each mount of the container, onto the folders of prepareVolumes. */
export function mountsOf(container: Container, volumes: Readonly<Record<string, string>>): LocalMount[] {
  return (container.volumeMounts ?? []).map((m) => {
    const dir = Object.hasOwn(volumes, m.name) ? volumes[m.name] : undefined;
    if (!dir) throw new PodSpecError(`container ${container.name} volumeMount ${m.name}`, 'no volume with that name in the pod');
    return { mountPath: m.mountPath.replace(/\/+$/, ''), dir: m.subPath ? path.join(dir, m.subPath) : dir };
  });
}
