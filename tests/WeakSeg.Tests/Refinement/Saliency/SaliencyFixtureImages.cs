using WeakSeg.Data;

namespace WeakSeg.Tests.Refinement.Saliency;

/// <summary>
/// The input images of the spectral-residual fixtures (tests/fixtures/saliency/README.md): RGB bytes (HWC) from a recipe and a
/// seed, so that the fixture needs to store only the maps. <see cref="Checksum"/> of each image is recorded in the fixture, so a
/// change of the recipe is caught before the maps are compared.
/// </summary>
public static class SaliencyFixtureImages
{
    /// <summary>Case name → (height, width). The <c>large</c> map is stored at every 5th row and column.</summary>
    public static readonly (string Name, int Height, int Width)[] Cases =
    [
        ("random", 37, 53), ("disc", 96, 128), ("square", 128, 128), ("constant", 20, 30), ("single_pixel", 1, 1),
        ("tiny", 2, 3), ("large", 375, 500),
    ];

    /// <summary>Stride of the rows and columns of the <c>large</c> map that the fixture keeps.</summary>
    public const int LargeStride = 5;

    public static byte[] Image(string name, int height, int width)
    {
        var rgb = new byte[height * width * 3];
        switch (name)
        {
            case "random":          // independent uniform bytes
            case "tiny":
            {
                var random = new DeterministicRandom(name == "random" ? 1 : 3);
                for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)random.NextInt(256);
                break;
            }
            case "constant":
            case "single_pixel":    // one colour everywhere
                for (int i = 0; i < rgb.Length; i += 3) { rgb[i] = 90; rgb[i + 1] = 150; rgb[i + 2] = 200; }
                break;
            case "disc":            // a bright disc on a noisy, striped background
            case "square":
            case "large":
            {
                var random = new DeterministicRandom(name switch { "disc" => 2, "square" => 4, _ => 5 });
                double cy = height * 0.4, cx = width * 0.6, radius = Math.Min(height, width) * 0.2;
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        bool inside = (y - cy) * (y - cy) + (x - cx) * (x - cx) <= radius * radius;
                        int stripe = ((x / 4 + y / 6) & 1) * 25;
                        int o = (y * width + x) * 3;
                        for (int c = 0; c < 3; c++)
                        {
                            int baseValue = inside ? 215 - 10 * c : 55 + stripe + 15 * c;
                            rgb[o + c] = (byte)Math.Clamp(baseValue + random.NextInt(31) - 15, 0, 255);
                        }
                    }
                break;
            }
            default: throw new ArgumentException("unknown saliency fixture case " + name);
        }
        return rgb;
    }

    /// <summary>FNV-1a (64-bit) of the bytes, as a hex string.</summary>
    public static string Checksum(byte[] bytes)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var b in bytes) { h ^= b; h *= 0x100000001B3UL; }
        return h.ToString("x16");
    }
}
