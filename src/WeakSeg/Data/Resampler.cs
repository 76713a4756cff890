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
    public static unsafe void Rgb(RgbImage src, AxisWeights wx, AxisWeights wy, Span<float> dst)
    {
        int outW = wx.Length, outH = wy.Length, srcW = src.Width;
        if (dst.Length < outW * outH * 3) throw new ArgumentException("destination too small", nameof(dst));
        int rowMin = int.MaxValue, rowMax = -1;
        for (int o = 0; o < outH; o++)
        {
            if (wy.Count[o] == 0) continue;
            rowMin = Math.Min(rowMin, wy.Start[o]);
            rowMax = Math.Max(rowMax, wy.Start[o] + wy.Count[o] - 1);
        }
        if (rowMax < 0) return;
        int rows = rowMax - rowMin + 1, lineLen = outW * 3;
        var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(rows * lineLen);
        try
        {
            fixed (byte* px = src.Pixels)
            fixed (float* sc = scratch, wxw = wx.Weights, wyw = wy.Weights, d = dst)
            fixed (int* xs = wx.Start, xc = wx.Count)
            {
                // Horizontal pass: source rows rowMin..rowMax → scratch[rows × outW × 3]. Padding columns (count 0) give 0.
                for (int r = 0; r < rows; r++)
                {
                    byte* row = px + (long)(rowMin + r) * srcW * 3;
                    float* o = sc + (long)r * lineLen;
                    for (int x = 0; x < outW; x++, o += 3)
                    {
                        int n = xc[x];
                        float a = 0, b = 0, c = 0;
                        byte* s = row + xs[x] * 3;
                        float* w = wxw + x * wx.Taps;
                        for (int t = 0; t < n; t++, s += 3)
                        {
                            float wt = w[t];
                            a += wt * s[0]; b += wt * s[1]; c += wt * s[2];
                        }
                        o[0] = a; o[1] = b; o[2] = c;
                    }
                }
                // Vertical pass.
                const float inv255 = 1f / 255f;
                for (int y = 0; y < outH; y++)
                {
                    int n = wy.Count[y];
                    if (n == 0) continue;
                    float* line = d + (long)y * lineLen;
                    float* w = wyw + y * wy.Taps;
                    float* s0 = sc + (long)(wy.Start[y] - rowMin) * lineLen;
                    float w0 = w[0] * inv255;
                    for (int i = 0; i < lineLen; i++) line[i] = w0 * s0[i];
                    for (int t = 1; t < n; t++)
                    {
                        float wt = w[t] * inv255;
                        float* st = s0 + (long)t * lineLen;
                        for (int i = 0; i < lineLen; i++) line[i] += wt * st[i];
                    }
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
