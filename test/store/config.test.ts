/** The config keys of image serving: `storage:` and the `general_settings` image keys. */
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { DEFAULT_STORE_DIR } from "../../src/store/settings.ts";

const catalog = loadCatalog();
const parse = (yaml: string, env: Record<string, string> = {}) =>
  parseConfig(yaml, env, catalog, "test.yaml");

describe("storage config", () => {
  it("defaults: local store in a temp folder, one hour, 1 GiB, a generated key, no extra hosts", () => {
    const config = parse("");
    expect(config.storage).toEqual({
      backend: "local",
      dir: DEFAULT_STORE_DIR,
      ttlSeconds: 3600,
      maxBytes: 1024 ** 3,
      sweepIntervalSeconds: 60,
      s3: undefined,
      signingKey: undefined,
    });
    expect(config.imageDownload).toEqual({
      allowedHosts: [],
      maxBytes: 50 * 1024 * 1024,
      timeoutMs: 60_000,
    });
  });

  it("reads every key, with the signing key from the environment", () => {
    const config = parse(
      `
general_settings:
  url_signing_key: os.environ/IMAGEGATE_URL_KEY
  allowed_image_hosts: [images.example.com, "http://127.0.0.1:9000/v1"]
  image_download_max_bytes: 1000000
  image_download_timeout_seconds: 5
storage:
  backend: s3
  dir: /var/lib/imagegate
  ttl_seconds: 600
  max_bytes: 5000000
  sweep_interval_seconds: 30
  s3:
    bucket: imgs
    prefix: gw/
    endpoint: http://127.0.0.1:9000
    region: eu-west-1
    force_path_style: true
    access_key_id: os.environ/S3_KEY
    secret_access_key: os.environ/S3_SECRET
    presigned_urls: true
`,
      {
        IMAGEGATE_URL_KEY: "from-the-environment-0123",
        S3_KEY: "AKIAEXAMPLE",
        S3_SECRET: "secret",
      },
    );
    expect(config.storage).toEqual({
      backend: "s3",
      dir: "/var/lib/imagegate",
      ttlSeconds: 600,
      maxBytes: 5_000_000,
      sweepIntervalSeconds: 30,
      s3: {
        bucket: "imgs",
        prefix: "gw/",
        endpoint: "http://127.0.0.1:9000",
        region: "eu-west-1",
        forcePathStyle: true,
        credentials: {
          accessKeyId: "AKIAEXAMPLE",
          secretAccessKey: "secret",
          sessionToken: undefined,
        },
        presignedUrls: true,
      },
      signingKey: "from-the-environment-0123",
    });
    expect(config.imageDownload.maxBytes).toBe(1_000_000);
    expect(config.imageDownload.timeoutMs).toBe(5000);
    expect(config.imageDownload.allowedHosts.map((r) => [r.host, r.port, r.scheme])).toEqual([
      ["images.example.com", undefined, undefined],
      ["127.0.0.1", 9000, "http:"],
    ]);
  });

  it("stops at startup naming the key for bad values", () => {
    expect(() => parse("storage:\n  backend: s3\n")).toThrow(
      /storage\.s3: .*`backend: s3` needs an `s3:` section/,
    );
    expect(() => parse("storage:\n  backend: ftp\n")).toThrow(/storage\.backend/);
    expect(() => parse("storage:\n  ttl_seconds: 0\n")).toThrow(/storage\.ttl_seconds/);
    expect(() => parse("storage:\n  folder: /tmp\n")).toThrow(/storage: unknown key 'folder'/);
    expect(() => parse("storage:\n  s3:\n    bucket: b\n    access_key_id: AKIA\n")).toThrow(
      /storage\.s3: give both/,
    );
    expect(() => parse("general_settings:\n  url_signing_key: short\n")).toThrow(
      /url_signing_key: must be at least 16/,
    );
    expect(() =>
      parse('general_settings:\n  allowed_image_hosts: ["ftp://files.example.com"]\n'),
    ).toThrow(/general_settings\.allowed_image_hosts\[0\]: .*only http and https/);
    expect(() =>
      parse('general_settings:\n  allowed_image_hosts: ["ok.example.com", "x.example.com/path"]\n'),
    ).toThrow(/allowed_image_hosts\[1\]/);
  });
});
