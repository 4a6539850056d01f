/**
 * Recraft's sizes by model generation: OpenAI sizes and aspect ratios → Recraft's `size`.
 */

/** Recraft's size tables differ by model generation; the model id names it. */
export type SizeTier = "v2v3" | "v4" | "v4_pro";

const SIZE_TIERS: ReadonlyArray<{ pattern: RegExp; tier: SizeTier }> = [
  { pattern: /^recraftv[23](_|$)/, tier: "v2v3" },
  { pattern: /^recraftv4.*_pro(_|$)/, tier: "v4_pro" },
  { pattern: /^recraftv4/, tier: "v4" },
];

export function sizeTier(model: string): SizeTier {
  return SIZE_TIERS.find((t) => t.pattern.test(model))?.tier ?? "v4";
}

/**
 * OpenAI sizes → the nearest-ratio Recraft size of each tier (providers.md §7 for V2/V3;
 * Recraft's appendix sizes for V4 and V4 Pro). Recraft's own sizes are sent as they are.
 */
export const OPENAI_SIZE_TO_RECRAFT: Readonly<Record<SizeTier, Readonly<Record<string, string>>>> =
  {
    v2v3: {
      auto: "1024x1024",
      "256x256": "1024x1024",
      "512x512": "1024x1024",
      "1024x1024": "1024x1024",
      "1792x1024": "1820x1024",
      "1024x1792": "1024x1820",
      "1536x1024": "1536x1024",
      "1024x1536": "1024x1536",
    },
    v4: {
      auto: "1024x1024",
      "256x256": "1024x1024",
      "512x512": "1024x1024",
      "1024x1024": "1024x1024",
      "1792x1024": "1344x768",
      "1024x1792": "768x1344",
      "1536x1024": "1280x832",
      "1024x1536": "832x1280",
    },
    v4_pro: {
      auto: "2048x2048",
      "256x256": "2048x2048",
      "512x512": "2048x2048",
      "1024x1024": "2048x2048",
      "1792x1024": "2688x1536",
      "1024x1792": "1536x2688",
      "1536x1024": "2560x1664",
      "1024x1536": "1664x2560",
    },
  };

/** Recraft's aspect ratios → the size each tier produces for them (Recraft API appendix). */
export const ASPECT_RATIO_TO_SIZE: Readonly<Record<SizeTier, Readonly<Record<string, string>>>> = {
  v2v3: {
    "1:1": "1024x1024",
    "2:1": "2048x1024",
    "1:2": "1024x2048",
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "4:3": "1365x1024",
    "3:4": "1024x1365",
    "5:4": "1280x1024",
    "4:5": "1024x1280",
    "6:10": "1024x1707",
    "14:10": "1434x1024",
    "10:14": "1024x1434",
    "16:9": "1820x1024",
    "9:16": "1024x1820",
  },
  v4: {
    "1:1": "1024x1024",
    "2:1": "1536x768",
    "1:2": "768x1536",
    "3:2": "1280x832",
    "2:3": "832x1280",
    "4:3": "1216x896",
    "3:4": "896x1216",
    "5:4": "1152x896",
    "4:5": "896x1152",
    "6:10": "832x1344",
    "14:10": "1280x896",
    "10:14": "896x1280",
    "16:9": "1344x768",
    "9:16": "768x1344",
  },
  v4_pro: {
    "1:1": "2048x2048",
    "2:1": "3072x1536",
    "1:2": "1536x3072",
    "3:2": "2560x1664",
    "2:3": "1664x2560",
    "4:3": "2432x1792",
    "3:4": "1792x2432",
    "5:4": "2304x1792",
    "4:5": "1792x2304",
    "6:10": "1664x2688",
    "14:10": "2560x1792",
    "10:14": "1792x2560",
    "16:9": "2688x1536",
    "9:16": "1536x2688",
  },
};
