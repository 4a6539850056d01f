/**
 * A real S3-compatible server for tests: s3rver, in-process on a loopback port, backed by
 * a temp folder, with one bucket.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

/** s3rver's fixed credentials. */
export const S3_ACCESS_KEY = "S3RVER";
export const S3_SECRET_KEY = "S3RVER";

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  close(): Promise<void>;
}

export async function startS3(bucket = "images"): Promise<LocalS3> {
  const directory = await mkdtemp(join(tmpdir(), "imagegate-s3rver-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The `storage:` YAML for a gateway on this server. */
export function s3StorageYaml(
  s3: LocalS3,
  options: { presigned?: boolean; prefix?: string } = {},
): string {
  return `storage:
  backend: s3
  s3:
    bucket: ${s3.bucket}
    prefix: ${options.prefix ?? "imagegate/"}
    endpoint: ${s3.endpoint}
    region: us-east-1
    force_path_style: true
    access_key_id: ${S3_ACCESS_KEY}
    secret_access_key: ${S3_SECRET_KEY}
    presigned_urls: ${options.presigned ?? false}
`;
}
