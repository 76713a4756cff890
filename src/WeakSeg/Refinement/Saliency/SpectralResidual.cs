namespace WeakSeg.Refinement.Saliency;

/// <summary>
/// Spectral-residual saliency (X. Hou and L. Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007), computed
/// the way OpenCV contrib's <c>StaticSaliencySpectralResidual::computeSaliency</c> (OpenCV 4.13) computes it, so that the maps
/// agree with that implementation to float rounding (checked against its output in <c>tests/fixtures/saliency</c>):
/// <list type="number">
/// <item>grey value of each pixel with OpenCV's 8-bit fixed-point weights (0.299 R + 0.587 G + 0.114 B, 15-bit coefficients);</item>
/// <item>grey image to 64×64 by OpenCV's bit-exact bilinear resize (<c>INTER_LINEAR_EXACT</c>: half-pixel centres, 8-bit
/// fixed-point weights, edge pixels repeated);</item>
/// <item>2-D DFT (double); amplitude and phase as OpenCV's <c>cartToPolar</c> gives them for double input: in single
/// precision, the phase from OpenCV's polynomial arctangent;</item>
/// <item>log(1 + amplitude) minus its 3×3 mean (border mirrored without repeating the edge, OpenCV's <c>BORDER_REFLECT_101</c>);
/// exp of that residual as the new amplitude, back to real/imaginary parts with the original phase (double);</item>
/// <item>unscaled inverse DFT; magnitude (single precision); 5×5 Gaussian blur with σ = 8 (reflect-101); squared;
/// divided by its maximum; to single precision;</item>
/// <item>bilinear resize back to the image size (OpenCV's <c>resize</c> of the float map: half-pixel centres, edge
/// clamping).</item>
/// </list>
/// The arctangent matters: with an exact one the maps move by up to 4·10⁻⁵. Plain managed code, deterministic, no native
/// library.
/// </summary>
public static class SpectralResidual
{
    /// <summary>Side of the square grey image whose spectrum is analysed.</summary>
    public const int Side = 64;

    /// <summary>The saliency of an RGB image (bytes [H·W·3], HWC) at the image's size, as OpenCV's estimator returns it: the
    /// maximum of the 64×64 map is 1, the resized map is not normalised further.</summary>
    public static float[] Compute(byte[] rgb, int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"image size {width}×{height} has no pixels");
        if (rgb.Length != height * width * 3) throw new ArgumentException($"expected {height}×{width}×3 bytes, got {rgb.Length}");
        var grey = Grey(rgb);
        var small = ResizeBytesLinear(grey, height, width, Side, Side);
        var map = SmallMap(small);
        return ResizeFloatsLinear(map, Side, Side, height, width);
    }

    /// <summary>The 64×64 saliency map of a 64×64 grey image, before the resize back (maximum 1).</summary>
    public static float[] SmallMap(byte[] grey64)
    {
        const int n = Side * Side;
        if (grey64.Length != n) throw new ArgumentException($"expected {Side}×{Side} grey bytes, got {grey64.Length}");
        var re = new double[n];
        var im = new double[n];
        for (int i = 0; i < n; i++) re[i] = grey64[i];
        Dft2(re, im, inverse: false);

        var logAmplitude = new double[n];
        var phase = new double[n];
        for (int i = 0; i < n; i++)
        {
            var (magnitude, angle) = ToPolar(re[i], im[i]);
            logAmplitude[i] = Math.Log(magnitude + 1.0);
            phase[i] = angle;
        }
        var localMean = BoxBlur3(logAmplitude, Side, Side);
        for (int i = 0; i < n; i++)
        {
            var (x, y) = FromPolar(Math.Exp(logAmplitude[i] - localMean[i]), phase[i]);
            re[i] = x;
            im[i] = y;
        }
        Dft2(re, im, inverse: true);

        var magnitudes = new double[n];
        for (int i = 0; i < n; i++) magnitudes[i] = Magnitude(re[i], im[i]);
        var blurred = GaussianBlur5(magnitudes, Side, Side, 8.0);
        double max = double.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            blurred[i] *= blurred[i];
            if (blurred[i] > max) max = blurred[i];
        }
        var result = new float[n];
        for (int i = 0; i < n; i++) result[i] = (float)(blurred[i] / max);
        return result;
    }

    /// <summary>Grey bytes of RGB bytes: (R·9798 + G·19235 + B·3735 + 2¹⁴) >> 15, OpenCV's 8-bit BGR→grey (weights 0.299,
    /// 0.587, 0.114 in 15-bit fixed point, rounded half up).</summary>
    public static byte[] Grey(byte[] rgb)
    {
        var grey = new byte[rgb.Length / 3];
        for (int i = 0, j = 0; i < grey.Length; i++, j += 3)
            grey[i] = (byte)((rgb[j] * 9798 + rgb[j + 1] * 19235 + rgb[j + 2] * 3735 + (1 << 14)) >> 15);
        return grey;
    }

    /// <summary>
    /// OpenCV's bit-exact bilinear resize of an 8-bit single-channel image (<c>INTER_LINEAR_EXACT</c>). Source coordinate of
    /// destination index d: (d + ½)·src/dst − ½; its fractional part as a weight in 1/256 (rounded half to even); positions
    /// before the first or after the last source pixel take that pixel. Rows are interpolated first (exact integers with 8
    /// fraction bits), then columns, rounding once at the end (16 fraction bits, half up).
    /// </summary>
    public static byte[] ResizeBytesLinear(byte[] src, int srcHeight, int srcWidth, int dstHeight, int dstWidth)
    {
        if (srcHeight == dstHeight && srcWidth == dstWidth) return (byte[])src.Clone();
        var (xOffset, xWeight, xMode) = FixedPointTaps(srcWidth, dstWidth);
        var (yOffset, yWeight, yMode) = FixedPointTaps(srcHeight, dstHeight);
        // Row pass: every source row to dstWidth values with 8 fraction bits.
        var rows = new int[srcHeight * dstWidth];
        for (int y = 0; y < srcHeight; y++)
        {
            int s = y * srcWidth, r = y * dstWidth;
            for (int x = 0; x < dstWidth; x++)
            {
                rows[r + x] = xMode[x] switch
                {
                    Tap.First => src[s] << 8,
                    Tap.Last => src[s + srcWidth - 1] << 8,
                    _ => (256 - xWeight[x]) * src[s + xOffset[x]] + xWeight[x] * src[s + xOffset[x] + 1],
                };
            }
        }
        var dst = new byte[dstHeight * dstWidth];
        for (int y = 0; y < dstHeight; y++)
        {
            int d = y * dstWidth;
            if (yMode[y] != Tap.Between)
            {
                int r = (yMode[y] == Tap.First ? 0 : srcHeight - 1) * dstWidth;
                for (int x = 0; x < dstWidth; x++) dst[d + x] = (byte)((rows[r + x] + 128) >> 8);
                continue;
            }
            int r0 = yOffset[y] * dstWidth, r1 = r0 + dstWidth, w1 = yWeight[y], w0 = 256 - w1;
            for (int x = 0; x < dstWidth; x++)
                dst[d + x] = (byte)Math.Min(255, (rows[r0 + x] * w0 + rows[r1 + x] * w1 + (1 << 15)) >> 16);
        }
        return dst;
    }

    enum Tap : byte { Between, First, Last }

    static (int[] Offset, int[] Weight, Tap[] Mode) FixedPointTaps(int srcSize, int dstSize)
    {
        var offset = new int[dstSize];
        var weight = new int[dstSize];
        var mode = new Tap[dstSize];
        double scale = 1.0 / ((double)dstSize / srcSize);
        for (int d = 0; d < dstSize; d++)
        {
            double position = scale * (d + 0.5) - 0.5;
            int index = (int)Math.Floor(position);
            if (index < 0 || srcSize == 1) mode[d] = Tap.First;
            else if (index >= srcSize - 1) mode[d] = Tap.Last;
            else
            {
                offset[d] = index;
                weight[d] = (int)Math.Round((position - index) * 256.0, MidpointRounding.ToEven);
            }
        }
        return (offset, weight, mode);
    }

    /// <summary>
    /// Bilinear resize of a float image as OpenCV 4.13's <c>resize</c> (<c>INTER_LINEAR</c>) does it, to float rounding: source
    /// coordinate (d + ½)·src/dst − ½; a column position outside the image is clamped to the edge column; a row position
    /// outside reads the edge row for both taps. Weights and sums in double, rounded to single precision once (OpenCV's
    /// results agree within one unit in the last place).
    /// </summary>
    public static float[] ResizeFloatsLinear(float[] src, int srcHeight, int srcWidth, int dstHeight, int dstWidth)
    {
        if (srcHeight == dstHeight && srcWidth == dstWidth) return (float[])src.Clone();
        double scaleX = 1.0 / ((double)dstWidth / srcWidth), scaleY = 1.0 / ((double)dstHeight / srcHeight);
        var rows = new double[srcHeight * dstWidth];
        for (int x = 0; x < dstWidth; x++)
        {
            double position = (x + 0.5) * scaleX - 0.5;
            int s = (int)Math.Floor(position);
            double f = position - s;
            if (s < 0) { f = 0; s = 0; }
            if (s >= srcWidth - 1) { f = 0; s = srcWidth - 1; }
            int s1 = Math.Min(s + 1, srcWidth - 1);
            for (int y = 0; y < srcHeight; y++)
                rows[y * dstWidth + x] = src[y * srcWidth + s] * (1 - f) + src[y * srcWidth + s1] * f;
        }
        var dst = new float[dstHeight * dstWidth];
        for (int y = 0; y < dstHeight; y++)
        {
            double position = (y + 0.5) * scaleY - 0.5;
            int s = (int)Math.Floor(position);
            double f = position - s;
            int r0 = Math.Clamp(s, 0, srcHeight - 1) * dstWidth, r1 = Math.Clamp(s + 1, 0, srcHeight - 1) * dstWidth;
            for (int x = 0; x < dstWidth; x++) dst[y * dstWidth + x] = (float)(rows[r0 + x] * (1 - f) + rows[r1 + x] * f);
        }
        return dst;
    }

    // ---- Fourier transform -------------------------------------------------------------------------------------------

    static readonly double[] TwiddleCos = Twiddles(Math.Cos);
    static readonly double[] TwiddleSin = Twiddles(Math.Sin);
    static double[] Twiddles(Func<double, double> f)
    {
        var t = new double[Side / 2];
        for (int k = 0; k < t.Length; k++) t[k] = f(2 * Math.PI * k / Side);
        return t;
    }

    /// <summary>Unscaled 2-D DFT of a 64×64 complex image in place (rows, then columns): forward with e^(−2πi·kn/64),
    /// inverse with e^(+2πi·kn/64). Radix-2, so a constant line has exactly zero non-DC coefficients.</summary>
    public static void Dft2(double[] re, double[] im, bool inverse)
    {
        var lineRe = new double[Side];
        var lineIm = new double[Side];
        for (int pass = 0; pass < 2; pass++)
        {
            for (int line = 0; line < Side; line++)
            {
                for (int k = 0; k < Side; k++)
                {
                    int i = pass == 0 ? line * Side + k : k * Side + line;
                    lineRe[k] = re[i];
                    lineIm[k] = im[i];
                }
                Fft(lineRe, lineIm, inverse);
                for (int k = 0; k < Side; k++)
                {
                    int i = pass == 0 ? line * Side + k : k * Side + line;
                    re[i] = lineRe[k];
                    im[i] = lineIm[k];
                }
            }
        }
    }

    static void Fft(double[] re, double[] im, bool inverse)
    {
        int n = re.Length;
        for (int i = 1, j = 0; i < n; i++)
        {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j |= bit;
            if (i < j) { (re[i], re[j]) = (re[j], re[i]); (im[i], im[j]) = (im[j], im[i]); }
        }
        double sign = inverse ? 1.0 : -1.0;
        for (int length = 2; length <= n; length <<= 1)
        {
            int half = length >> 1, step = n / length;
            for (int start = 0; start < n; start += length)
            {
                for (int k = 0; k < half; k++)
                {
                    double wr = TwiddleCos[k * step], wi = sign * TwiddleSin[k * step];
                    int a = start + k, b = a + half;
                    double tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr; im[b] = im[a] - ti;
                    re[a] += tr; im[a] += ti;
                }
            }
        }
    }

    // ---- Polar conversions as OpenCV does them -------------------------------------------------------------------

    static readonly float AtanP1 = (float)(0.9997878412794807f * (float)(180 / Math.PI));
    static readonly float AtanP3 = (float)(-0.3258083974640975f * (float)(180 / Math.PI));
    static readonly float AtanP5 = (float)(0.1555786518463281f * (float)(180 / Math.PI));
    static readonly float AtanP7 = (float)(-0.04432655554792128f * (float)(180 / Math.PI));
    static readonly float DegreesToRadians = (float)(Math.PI / 180);
    /// <summary>Added to the denominator of the ratio (DBL_EPSILON in single precision), so that atan(0, 0) is 0.</summary>
    static readonly float AtanGuard = (float)2.220446049250313e-16;

    /// <summary>Magnitude and angle (radians, in [0, 2π)) of x + iy as OpenCV's <c>cartToPolar</c> gives them for double input:
    /// both in single precision, the angle from a degree-7 odd polynomial in min(|x|,|y|)/max(|x|,|y|) (error up to
    /// 1.6·10⁻⁴ rad), evaluated with fused multiply-adds (bit-identical to OpenCV 4.13 on x64).</summary>
    public static (double Magnitude, double Angle) ToPolar(double x, double y)
    {
        float xf = (float)x, yf = (float)y;
        float ax = MathF.Abs(xf), ay = MathF.Abs(yf);
        float c = MathF.Min(ax, ay) / (MathF.Max(ax, ay) + AtanGuard);
        float cc = c * c;
        float a = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(cc, AtanP7, AtanP5), cc, AtanP3), cc, AtanP1) * c;
        if (!(ax >= ay)) a = 90f - a;
        if (xf < 0) a = 180f - a;
        if (yf < 0) a = 360f - a;
        return (Magnitude(x, y), a * DegreesToRadians);
    }

    /// <summary>|x + iy| in single precision, as OpenCV's <c>cartToPolar</c> gives it for double input.</summary>
    public static double Magnitude(double x, double y)
    {
        float xf = (float)x, yf = (float)y;
        return MathF.Sqrt(MathF.FusedMultiplyAdd(xf, xf, yf * yf));
    }

    /// <summary>magnitude·(cos θ, sin θ) in double precision (OpenCV 4.13's <c>polarToCart</c> for double input agrees with it to
    /// double rounding).</summary>
    public static (double X, double Y) FromPolar(double magnitude, double angle) => (magnitude * Math.Cos(angle), magnitude * Math.Sin(angle));

    // ---- Filters (border: reflect-101, i.e. …, 2, 1 | 0, 1, 2, … | n−2, n−3, …) ---------------------------------------------

    static int Reflect101(int i, int n) => n == 1 ? 0 : i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;

    /// <summary>Mean over the 3×3 neighbourhood, border reflect-101.</summary>
    public static double[] BoxBlur3(double[] src, int height, int width)
    {
        var rows = new double[src.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                rows[y * width + x] = src[y * width + Reflect101(x - 1, width)] + src[y * width + x] + src[y * width + Reflect101(x + 1, width)];
        var dst = new double[src.Length];
        const double scale = 1.0 / 9;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                dst[y * width + x] = (rows[Reflect101(y - 1, height) * width + x] + rows[y * width + x] + rows[Reflect101(y + 1, height) * width + x]) * scale;
        return dst;
    }

    /// <summary>Separable 5×5 Gaussian blur with standard deviation <paramref name="sigma"/> (weights exp(−i²/2σ²), i = −2..2,
    /// normalised to sum 1), border reflect-101.</summary>
    public static double[] GaussianBlur5(double[] src, int height, int width, double sigma)
    {
        var kernel = new double[5];
        double sum = 0;
        for (int i = 0; i < 5; i++) { kernel[i] = Math.Exp(-(i - 2) * (i - 2) / (2 * sigma * sigma)); sum += kernel[i]; }
        for (int i = 0; i < 5; i++) kernel[i] /= sum;
        var rows = new double[src.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double v = 0;
                for (int k = 0; k < 5; k++) v += kernel[k] * src[y * width + Reflect101(x + k - 2, width)];
                rows[y * width + x] = v;
            }
        var dst = new double[src.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double v = 0;
                for (int k = 0; k < 5; k++) v += kernel[k] * rows[Reflect101(y + k - 2, height) * width + x];
                dst[y * width + x] = v;
            }
        return dst;
    }
}
