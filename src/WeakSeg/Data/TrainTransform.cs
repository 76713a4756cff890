namespace WeakSeg.Data;

/// <summary>How <see cref="TrainTransform"/> picks the crop.</summary>
public enum CropMode
{
    /// <summary>torchvision/timm RandomResizedCrop: a region of random area and aspect ratio resized to the crop size (classification training).</summary>
    RandomResizedCrop,
    /// <summary>Scale the whole image by a random factor, then a random crop of the crop size, padding where the image is smaller
    /// (image with the mean colour = 0 after normalisation, mask with 255). The segmentation-style pipeline.</summary>
    RandomScaleCrop,
}

/// <summary>
/// Training augmentation: random crop (see <see cref="CropMode"/>), horizontal flip, colour jitter (brightness, contrast,
/// saturation in a random order, as torchvision's ColorJitter without hue), ImageNet normalisation. Images are resampled
/// with an antialiased bilinear filter, masks with nearest neighbour (padding 255). Every random decision comes from the
/// <see cref="DeterministicRandom"/> passed in.
/// </summary>
public sealed record TrainTransform
{
    /// <summary>Output side (square). 224 = MCTformer/DeiT-S classification input (MCTformer main.py --input-size).</summary>
    public int CropSize { get; init; } = 224;
    public CropMode Mode { get; init; } = CropMode.RandomResizedCrop;
    /// <summary>RandomResizedCrop area fraction range: (0.08, 1.0) is timm/torchvision's default, which MCTformer uses through timm create_transform.</summary>
    public double MinAreaScale { get; init; } = 0.08;
    public double MaxAreaScale { get; init; } = 1.0;
    /// <summary>RandomResizedCrop aspect-ratio range (w/h, log-uniform): (3/4, 4/3), torchvision/timm default.</summary>
    public double MinAspectRatio { get; init; } = 3.0 / 4.0;
    public double MaxAspectRatio { get; init; } = 4.0 / 3.0;
    /// <summary>RandomScaleCrop image scale range: (0.5, 2.0) as MCTformer's VOC12Dataset rescale_range and ToCo's random scaling.</summary>
    public double MinRescale { get; init; } = 0.5;
    public double MaxRescale { get; init; } = 2.0;
    /// <summary>Probability of a horizontal flip: 0.5 (timm hflip default).</summary>
    public double HorizontalFlipProbability { get; init; } = 0.5;
    /// <summary>Colour jitter strengths: factor uniform in [max(0, 1 − s), 1 + s]; 0.4 is DeiT/timm's --color-jitter default.
    /// (MCTformer's timm pipeline uses RandAugment instead when --aa is set; WeakSeg has no RandAugment.)</summary>
    public double Brightness { get; init; } = 0.4;
    public double Contrast { get; init; } = 0.4;
    public double Saturation { get; init; } = 0.4;
    /// <summary>ImageNet mean and std (timm IMAGENET_DEFAULT_MEAN/STD).</summary>
    public (float R, float G, float B) Mean { get; init; } = (0.485f, 0.456f, 0.406f);
    public (float R, float G, float B) Std { get; init; } = (0.229f, 0.224f, 0.225f);

    /// <summary>Problems with the settings, each naming the field (empty when valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (CropSize < 1 || CropSize > 4096) errors.Add($"CropSize must be in 1..4096 (got {CropSize})");
        if (!(MinAreaScale > 0 && MinAreaScale <= MaxAreaScale && MaxAreaScale <= 1)) errors.Add($"MinAreaScale/MaxAreaScale must satisfy 0 < min ≤ max ≤ 1 (got {MinAreaScale}, {MaxAreaScale})");
        if (!(MinAspectRatio > 0 && MinAspectRatio <= MaxAspectRatio)) errors.Add($"MinAspectRatio/MaxAspectRatio must satisfy 0 < min ≤ max (got {MinAspectRatio}, {MaxAspectRatio})");
        if (!(MinRescale > 0 && MinRescale <= MaxRescale)) errors.Add($"MinRescale/MaxRescale must satisfy 0 < min ≤ max (got {MinRescale}, {MaxRescale})");
        if (HorizontalFlipProbability is < 0 or > 1) errors.Add($"HorizontalFlipProbability must be in [0, 1] (got {HorizontalFlipProbability})");
        if (Brightness < 0 || Contrast < 0 || Saturation < 0) errors.Add("Brightness, Contrast and Saturation must be ≥ 0");
        if (Std.R <= 0 || Std.G <= 0 || Std.B <= 0) errors.Add("Std must be positive");
        return errors;
    }

    /// <summary>No randomness: identity geometry at the image's own size, no flip, no jitter (useful for tests and inspection).</summary>
    public static TrainTransform None(int size) => new()
    {
        CropSize = size, MinAreaScale = 1, MaxAreaScale = 1, MinAspectRatio = 1, MaxAspectRatio = 1,
        HorizontalFlipProbability = 0, Brightness = 0, Contrast = 0, Saturation = 0,
    };

    /// <summary>
    /// Augments one sample. <paramref name="imageOut"/>: 3·S·S floats, CHW, normalised; <paramref name="maskOut"/> (S·S bytes, 255 =
    /// ignore/padding) is written only when <paramref name="mask"/> is given, which must have the image's size.
    /// </summary>
    public void Apply(RgbImage image, LabelMap? mask, ref DeterministicRandom rng, Span<float> imageOut, Span<byte> maskOut) =>
        Apply(image, mask, ref rng, imageOut, maskOut, null, default);

    /// <summary>As <see cref="Apply(RgbImage, LabelMap?, ref DeterministicRandom, Span{float}, Span{byte})"/>, and a second per-pixel plane
    /// <paramref name="plane"/> (e.g. a saliency map as bytes) resampled like the mask into <paramref name="planeOut"/> (255 = padding).</summary>
    public void Apply(RgbImage image, LabelMap? mask, ref DeterministicRandom rng, Span<float> imageOut, Span<byte> maskOut, LabelMap? plane, Span<byte> planeOut)
    {
        if (plane != null && (plane.Width != image.Width || plane.Height != image.Height || planeOut.Length < CropSize * CropSize))
            throw new WeakSegException($"per-pixel plane is {plane.Width}x{plane.Height} but its image is {image.Width}x{image.Height}");
        int s = CropSize;
        if (imageOut.Length < 3 * s * s) throw new ArgumentException($"image buffer holds {imageOut.Length} floats, need {3 * s * s}", nameof(imageOut));
        if (mask != null)
        {
            if (mask.Width != image.Width || mask.Height != image.Height)
                throw new WeakSegException($"mask is {mask.Width}x{mask.Height} but its image is {image.Width}x{image.Height}");
            if (maskOut.Length < s * s) throw new ArgumentException($"mask buffer holds {maskOut.Length} bytes, need {s * s}", nameof(maskOut));
        }
        var g = SampleGeometry(image.Width, image.Height, ref rng);
        var wx = new AxisWeights(s, image.Width, g.OffsetX, g.ScaleX, g.Flip);
        var wy = new AxisWeights(s, image.Height, g.OffsetY, g.ScaleY, flip: false);

        var hwc = System.Buffers.ArrayPool<float>.Shared.Rent(3 * s * s);
        try
        {
            var buf = hwc.AsSpan(0, 3 * s * s);
            buf.Clear();
            Resampler.Rgb(image, wx, wy, buf);
            ColorJitter(buf, wx, wy, ref rng);
            Normalise(buf, wx, wy, imageOut, Mean, Std);
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(hwc); }
        if (mask != null) Resampler.Mask(mask, wx, wy, maskOut);
        if (plane != null) Resampler.Mask(plane, wx, wy, planeOut);
    }

    /// <summary>
    /// Draws the crop geometry (the first random decisions of <see cref="Apply"/>, in the same order). Output pixel (x, y)
    /// has its centre at source coordinates (OffsetX + (x' + 0.5)·ScaleX, OffsetY + (y + 0.5)·ScaleY), x' = Flip ? S−1−x : x
    /// (pixel-edge coordinates); centres outside the image are padding.
    /// </summary>
    public CropGeometry SampleGeometry(int width, int height, ref DeterministicRandom rng)
    {
        var (ox, oy, sx, sy) = Mode == CropMode.RandomResizedCrop ? SampleResizedCrop(width, height, ref rng) : SampleScaleCrop(width, height, ref rng);
        bool flip = HorizontalFlipProbability > 0 && rng.NextDouble() < HorizontalFlipProbability;
        return new CropGeometry(ox, oy, sx, sy, flip);
    }

    (double Ox, double Oy, double ScaleX, double ScaleY) SampleResizedCrop(int width, int height, ref DeterministicRandom rng)
    {
        double area = (double)width * height;
        double logMin = Math.Log(MinAspectRatio), logMax = Math.Log(MaxAspectRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * rng.Uniform(MinAreaScale, MaxAreaScale);
            double ratio = Math.Exp(logMin == logMax ? logMin : rng.Uniform(logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(target * ratio));
            int h = (int)Math.Round(Math.Sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= width && h <= height)
            {
                int x0 = rng.NextInclusive(0, width - w), y0 = rng.NextInclusive(0, height - h);
                return (x0, y0, (double)w / CropSize, (double)h / CropSize);
            }
        }
        // Fallback (torchvision): central crop with the ratio clamped into range.
        double inRatio = (double)width / height;
        int cw = width, ch = height;
        if (inRatio < MinAspectRatio) ch = (int)Math.Round(cw / MinAspectRatio);
        else if (inRatio > MaxAspectRatio) cw = (int)Math.Round(ch * MaxAspectRatio);
        cw = Math.Clamp(cw, 1, width); ch = Math.Clamp(ch, 1, height);
        return ((width - cw) / 2, (height - ch) / 2, (double)cw / CropSize, (double)ch / CropSize);
    }

    (double Ox, double Oy, double ScaleX, double ScaleY) SampleScaleCrop(int width, int height, ref DeterministicRandom rng)
    {
        double f = MinRescale == MaxRescale ? MinRescale : rng.Uniform(MinRescale, MaxRescale);
        int sw = Math.Max(1, (int)Math.Round(width * f)), sh = Math.Max(1, (int)Math.Round(height * f));
        int cx = rng.NextInclusive(Math.Min(0, sw - CropSize), Math.Max(0, sw - CropSize));
        int cy = rng.NextInclusive(Math.Min(0, sh - CropSize), Math.Max(0, sh - CropSize));
        double kx = (double)width / sw, ky = (double)height / sh;
        return (cx * kx, cy * ky, kx, ky);
    }

    void ColorJitter(Span<float> hwc, AxisWeights wx, AxisWeights wy, ref DeterministicRandom rng)
    {
        Span<int> order = [0, 1, 2];
        for (int i = 2; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        foreach (var op in order)
        {
            double strength = op switch { 0 => Brightness, 1 => Contrast, _ => Saturation };
            if (strength <= 0) continue;
            float f = (float)rng.Uniform(Math.Max(0, 1 - strength), 1 + strength);
            switch (op)
            {
                case 0: Blend(hwc, f, 0f); break;
                case 1: Blend(hwc, f, MeanGray(hwc, wx, wy)); break;
                default:
                    for (int i = 0; i < hwc.Length; i += 3)
                    {
                        float g = Gray(hwc[i], hwc[i + 1], hwc[i + 2]);
                        hwc[i] = Clamp01(f * hwc[i] + (1 - f) * g);
                        hwc[i + 1] = Clamp01(f * hwc[i + 1] + (1 - f) * g);
                        hwc[i + 2] = Clamp01(f * hwc[i + 2] + (1 - f) * g);
                    }
                    break;
            }
        }
    }

    /// <summary>torchvision's rgb_to_grayscale weights.</summary>
    internal static float Gray(float r, float g, float b) => 0.2989f * r + 0.587f * g + 0.114f * b;
    static float Clamp01(float v) => v < 0 ? 0 : v > 1 ? 1 : v;

    static void Blend(Span<float> hwc, float f, float other)
    {
        float add = (1 - f) * other;
        for (int i = 0; i < hwc.Length; i++) hwc[i] = Clamp01(f * hwc[i] + add);
    }

    static float MeanGray(Span<float> hwc, AxisWeights wx, AxisWeights wy)
    {
        double sum = 0; long n = 0;
        int w = wx.Length;
        for (int y = 0; y < wy.Length; y++)
        {
            if (!wy.Inside(y)) continue;
            for (int x = 0; x < w; x++)
            {
                if (!wx.Inside(x)) continue;
                int i = 3 * (y * w + x);
                sum += Gray(hwc[i], hwc[i + 1], hwc[i + 2]); n++;
            }
        }
        return n == 0 ? 0 : (float)(sum / n);
    }

    /// <summary>HWC 0..1 → CHW normalised; padding pixels become 0 (the mean colour).</summary>
    internal static void Normalise(ReadOnlySpan<float> hwc, AxisWeights wx, AxisWeights wy, Span<float> chw, (float R, float G, float B) mean, (float R, float G, float B) std)
    {
        int w = wx.Length, h = wy.Length, plane = w * h;
        float m0 = mean.R, m1 = mean.G, m2 = mean.B, i0 = 1 / std.R, i1 = 1 / std.G, i2 = 1 / std.B;
        for (int y = 0; y < h; y++)
        {
            bool rowInside = wy.Inside(y);
            for (int x = 0; x < w; x++)
            {
                int p = y * w + x;
                if (!rowInside || !wx.Inside(x)) { chw[p] = 0; chw[plane + p] = 0; chw[2 * plane + p] = 0; continue; }
                int i = 3 * p;
                chw[p] = (hwc[i] - m0) * i0;
                chw[plane + p] = (hwc[i + 1] - m1) * i1;
                chw[2 * plane + p] = (hwc[i + 2] - m2) * i2;
            }
        }
    }
}

/// <summary>Where a transformed sample comes from: source offset (pixels) and source pixels per output pixel per axis, and the flip.</summary>
public readonly record struct CropGeometry(double OffsetX, double OffsetY, double ScaleX, double ScaleY, bool Flip);

/// <summary>Deterministic preprocessing for inference: optional resize to a fixed size (antialiased bilinear), ImageNet normalisation.</summary>
public sealed record EvalTransform
{
    /// <summary>Output width and height; null keeps the image's own size.</summary>
    public int? Width { get; init; }
    public int? Height { get; init; }
    public (float R, float G, float B) Mean { get; init; } = (0.485f, 0.456f, 0.406f);
    public (float R, float G, float B) Std { get; init; } = (0.229f, 0.224f, 0.225f);

    /// <summary>CHW normalised floats of the (resized) image, with the output size.</summary>
    public (float[] Chw, int Height, int Width) Apply(RgbImage image, bool flip = false)
    {
        int w = Width ?? image.Width, h = Height ?? image.Height;
        var wx = new AxisWeights(w, image.Width, 0, (double)image.Width / w, flip);
        var wy = new AxisWeights(h, image.Height, 0, (double)image.Height / h, false);
        var hwc = new float[3 * w * h];
        Resampler.Rgb(image, wx, wy, hwc);
        var chw = new float[3 * w * h];
        TrainTransform.Normalise(hwc, wx, wy, chw, Mean, Std);
        return (chw, h, w);
    }

    /// <summary>Nearest-neighbour resize of a mask to the transform's size (identity when no size is set).</summary>
    public LabelMap ApplyToMask(LabelMap mask)
    {
        int w = Width ?? mask.Width, h = Height ?? mask.Height;
        var wx = new AxisWeights(w, mask.Width, 0, (double)mask.Width / w, false);
        var wy = new AxisWeights(h, mask.Height, 0, (double)mask.Height / h, false);
        var result = new LabelMap(w, h);
        Resampler.Mask(mask, wx, wy, result.Labels);
        return result;
    }
}
