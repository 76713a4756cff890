namespace WeakSeg.Data;

/// <summary>
/// Per-axis resampling weights. Output pixel o (centre o + 0.5) reads source coordinate c = offset + (o + 0.5)·scale
/// (pixel-edge coordinates, source pixel j has its centre at j + 0.5, i.e. align_corners = false). Images use a triangle
/// (bilinear) filter whose radius grows with the downscale factor (antialiased like PIL's bilinear resize; plain bilinear
/// when upscaling); masks use the nearest source pixel floor(c). Output pixels whose centre falls outside the source are padding.
/// </summary>
internal sealed class AxisWeights
{
    public readonly int Length;
    public readonly int Taps;
    public readonly int[] Start;     // first source index per output pixel
    public readonly int[] Count;     // taps used per output pixel
    public readonly float[] Weights; // Length × Taps, normalised
    public readonly int[] Nearest;   // source index for masks, -1 = padding

    public AxisWeights(int outLength, int sourceLength, double offset, double scale, bool flip)
    {
        Length = outLength;
        double radius = Math.Max(scale, 1.0);
        Taps = (int)Math.Ceiling(2 * radius) + 2;
        Start = new int[outLength];
        Count = new int[outLength];
        Weights = new float[outLength * Taps];
        Nearest = new int[outLength];
        Span<double> w = stackalloc double[Taps];
        for (int o = 0; o < outLength; o++)
        {
            int src = flip ? outLength - 1 - o : o;
            double c = offset + (src + 0.5) * scale;
            if (c < 0 || c >= sourceLength) { Nearest[o] = -1; Count[o] = 0; continue; }
            Nearest[o] = Math.Min(sourceLength - 1, (int)Math.Floor(c));
            int first = Math.Max(0, (int)Math.Ceiling(c - radius - 0.5));
            int last = Math.Min(sourceLength - 1, (int)Math.Floor(c + radius - 0.5));
            double sum = 0;
            int n = 0, start = -1;
            for (int j = first; j <= last && n < Taps; j++)
            {
                double wt = 1 - Math.Abs(j + 0.5 - c) / radius;
                if (wt <= 0) { if (start < 0) continue; else break; }
                if (start < 0) start = j;
                w[n++] = wt; sum += wt;
            }
            Start[o] = start;
            Count[o] = n;
            for (int t = 0; t < n; t++) Weights[o * Taps + t] = (float)(w[t] / sum);
        }
    }

    public bool Inside(int o) => Nearest[o] >= 0;
}

/// <summary>Separable resampling of an RGB image into a float HWC buffer (values 0..1), no per-pixel allocation.</summary>
internal static class Resampler
{
    /// <summary>Fills <paramref name="dst"/> (outH·outW·3, 0..1); padding pixels are left as they are.</summary>
    public static void Rgb(RgbImage src, AxisWeights wx, AxisWeights wy, Span<float> dst)
    {
        int outW = wx.Length, outH = wy.Length, srcW = src.Width;
        int rowMin = int.MaxValue, rowMax = -1;
        for (int o = 0; o < outH; o++)
        {
            if (wy.Count[o] == 0) continue;
            rowMin = Math.Min(rowMin, wy.Start[o]);
            rowMax = Math.Max(rowMax, wy.Start[o] + wy.Count[o] - 1);
        }
        if (rowMax < 0) return;
        int rows = rowMax - rowMin + 1;
        var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(rows * outW * 3);
        try
        {
            var px = src.Pixels;
            // Horizontal pass: rows rowMin..rowMax → scratch[rows × outW × 3].
            for (int r = 0; r < rows; r++)
            {
                int rowBase = (rowMin + r) * srcW * 3;
                int outBase = r * outW * 3;
                for (int x = 0; x < outW; x++)
                {
                    int n = wx.Count[x];
                    float a = 0, b = 0, c = 0;
                    int s = rowBase + wx.Start[x] * 3, wBase = x * wx.Taps;
                    for (int t = 0; t < n; t++, s += 3)
                    {
                        float wt = wx.Weights[wBase + t];
                        a += wt * px[s]; b += wt * px[s + 1]; c += wt * px[s + 2];
                    }
                    scratch[outBase + 3 * x] = a; scratch[outBase + 3 * x + 1] = b; scratch[outBase + 3 * x + 2] = c;
                }
            }
            // Vertical pass.
            const float inv255 = 1f / 255f;
            for (int y = 0; y < outH; y++)
            {
                int n = wy.Count[y];
                if (n == 0) continue;
                int wBase = y * wy.Taps, first = wy.Start[y] - rowMin;
                var line = dst.Slice(y * outW * 3, outW * 3);
                line.Clear();
                for (int t = 0; t < n; t++)
                {
                    float wt = wy.Weights[wBase + t] * inv255;
                    var srcLine = scratch.AsSpan((first + t) * outW * 3, outW * 3);
                    for (int i = 0; i < line.Length; i++) line[i] += wt * srcLine[i];
                }
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
    }

    /// <summary>Nearest-neighbour mask resampling; padding pixels get 255.</summary>
    public static void Mask(LabelMap src, AxisWeights wx, AxisWeights wy, Span<byte> dst)
    {
        int outW = wx.Length;
        for (int y = 0; y < wy.Length; y++)
        {
            var line = dst.Slice(y * outW, outW);
            int sy = wy.Nearest[y];
            if (sy < 0) { line.Fill(LabelMap.Ignore); continue; }
            int rowBase = sy * src.Width;
            for (int x = 0; x < outW; x++)
            {
                int sx = wx.Nearest[x];
                line[x] = sx < 0 ? LabelMap.Ignore : src.Labels[rowBase + sx];
            }
        }
    }
}
