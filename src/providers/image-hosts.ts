/**
 * The hosts each provider serves its image URLs from (the download guard's list, store/download.ts),
 * built from the descriptors.
 */
import type { Provider } from "../catalog/providers.ts";
import { DESCRIPTORS } from "./index.ts";

export const PROVIDER_IMAGE_HOSTS: Readonly<Record<Provider, readonly string[]>> =
  Object.fromEntries(Object.values(DESCRIPTORS).map((d) => [d.name, d.imageHosts])) as Record<
    Provider,
    readonly string[]
  >;
