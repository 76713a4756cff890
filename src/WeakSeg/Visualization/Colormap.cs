namespace WeakSeg.Visualization;

/// <summary>
/// Colour maps for score maps in [0, 1] → 8-bit sRGB. Values outside [0, 1] are clamped; NaN maps like 0.
/// </summary>
public static class Colormap
{
    /// <summary>
    /// Turbo (Google AI, A. Mikhailov 2019): every 5th entry (index 0, 5, …, 255) of the published 256-entry sRGB table,
    /// rounded to bytes, as R,G,B triples. Linear interpolation between these samples stays within 1/255 of the full table.
    /// </summary>
    static readonly byte[] TurboSamples =
    [
        48, 18, 59, 54, 33, 95, 59, 47, 128, 63, 62, 156, 66, 75, 181, 69, 89, 203, 70, 102, 221, 71, 115, 235,
        70, 128, 246, 69, 140, 253, 64, 153, 255, 56, 165, 251, 47, 178, 244, 39, 190, 233, 31, 201, 221, 26, 212, 208,
        24, 221, 194, 26, 228, 182, 34, 235, 170, 47, 241, 155, 63, 246, 138, 82, 250, 122, 101, 253, 105, 121, 254, 89,
        139, 255, 75, 156, 254, 64, 169, 251, 57, 183, 247, 53, 195, 241, 52, 208, 234, 52, 219, 226, 54, 229, 217, 56,
        238, 207, 58, 245, 197, 58, 250, 186, 57, 253, 174, 53, 254, 161, 48, 254, 147, 42, 252, 132, 35, 249, 117, 29,
        244, 102, 23, 239, 88, 17, 232, 75, 12, 225, 65, 9, 216, 55, 6, 206, 45, 4, 195, 37, 3, 183, 29, 2,
        169, 22, 1, 155, 15, 1, 139, 9, 2, 122, 4, 3,
    ];

    const int TurboSampleStep = 5; // table entries between two samples (51 segments cover entries 0..255)

    /// <summary>Turbo colour of <paramref name="v"/>: v·255 is the position in the 256-entry table, interpolated linearly.
    /// Turbo(0) = (48, 18, 59) dark blue, Turbo(1) = (122, 4, 3) dark red.</summary>
    public static (byte R, byte G, byte B) Turbo(float v)
    {
        float position = Clamp01(v) * 255f / TurboSampleStep;     // 0..51 in sample units
        int k = Math.Min((int)position, TurboSamples.Length / 3 - 2);
        float t = position - k;
        return (Lerp(TurboSamples[3 * k], TurboSamples[3 * k + 3], t),
                Lerp(TurboSamples[3 * k + 1], TurboSamples[3 * k + 4], t),
                Lerp(TurboSamples[3 * k + 2], TurboSamples[3 * k + 5], t));
    }

    /// <summary>
    /// Jet as matplotlib defines it (piecewise linear channels):
    /// red 0 up to 0.35, rising to 1 at 0.66, 1 up to 0.89, falling to 0.5 at 1;
    /// green 0 up to 0.125, rising to 1 at 0.375, 1 up to 0.64, falling to 0 at 0.91;
    /// blue 0.5 at 0 rising to 1 at 0.11, 1 up to 0.34, falling to 0 at 0.65.
    /// Jet(0) = (0, 0, 128), Jet(1) = (128, 0, 0).
    /// </summary>
    public static (byte R, byte G, byte B) Jet(float v)
    {
        float x = Clamp01(v);
        float r = Piecewise(x, [0f, 0.35f, 0.66f, 0.89f, 1f], [0f, 0f, 1f, 1f, 0.5f]);
        float g = Piecewise(x, [0f, 0.125f, 0.375f, 0.64f, 0.91f, 1f], [0f, 0f, 1f, 1f, 0f, 0f]);
        float b = Piecewise(x, [0f, 0.11f, 0.34f, 0.65f, 1f], [0.5f, 1f, 1f, 0f, 0f]);
        return (ToByte(r), ToByte(g), ToByte(b));
    }

    static float Clamp01(float v) => float.IsNaN(v) ? 0f : Math.Clamp(v, 0f, 1f);

    static byte Lerp(byte a, byte b, float t) => (byte)MathF.Round(a + (b - a) * t, MidpointRounding.AwayFromZero);

    static byte ToByte(float unit) => (byte)MathF.Round(Math.Clamp(unit, 0f, 1f) * 255f, MidpointRounding.AwayFromZero);

    /// <summary>Linear interpolation through the knots (xs ascending, first 0, last 1).</summary>
    static float Piecewise(float x, ReadOnlySpan<float> xs, ReadOnlySpan<float> ys)
    {
        for (int i = 1; i < xs.Length; i++)
        {
            if (x <= xs[i])
            {
                float t = (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
                return ys[i - 1] + (ys[i] - ys[i - 1]) * t;
            }
        }
        return ys[^1];
    }
}
