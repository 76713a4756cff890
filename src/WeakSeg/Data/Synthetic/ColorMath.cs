namespace WeakSeg.Data.Synthetic;

/// <summary>A linear RGB triple in [0, 1] (doubles, so blending and supersampling stay exact until quantisation).</summary>
public readonly record struct Rgb(double R, double G, double B)
{
    public static Rgb operator +(Rgb a, Rgb b) => new(a.R + b.R, a.G + b.G, a.B + b.B);
    public static Rgb operator *(Rgb a, double s) => new(a.R * s, a.G * s, a.B * s);

    /// <summary>a + (b − a)·t.</summary>
    public static Rgb Lerp(Rgb a, Rgb b, double t) => new(a.R + (b.R - a.R) * t, a.G + (b.G - a.G) * t, a.B + (b.B - a.B) * t);

    /// <summary>HSV → RGB; hue in degrees (any value, wrapped), saturation and value clamped to [0, 1].</summary>
    public static Rgb FromHsv(double hueDegrees, double saturation, double value)
    {
        double h = hueDegrees % 360; if (h < 0) h += 360;
        double s = Math.Clamp(saturation, 0, 1), v = Math.Clamp(value, 0, 1);
        double c = v * s, hp = h / 60, x = c * (1 - Math.Abs(hp % 2 - 1)), m = v - c;
        (double r, double g, double b) = (int)hp switch
        {
            0 => (c, x, 0.0),
            1 => (x, c, 0.0),
            2 => (0.0, c, x),
            3 => (0.0, x, c),
            4 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        return new Rgb(r + m, g + m, b + m);
    }

    /// <summary>Hue in degrees [0, 360) of an RGB colour (0 for greys).</summary>
    public double Hue()
    {
        double max = Math.Max(R, Math.Max(G, B)), min = Math.Min(R, Math.Min(G, B)), d = max - min;
        if (d <= 1e-12) return 0;
        double h = max == R ? (G - B) / d % 6 : max == G ? (B - R) / d + 2 : (R - G) / d + 4;
        h *= 60;
        return h < 0 ? h + 360 : h;
    }

    public double Luma => 0.299 * R + 0.587 * G + 0.114 * B;
}
