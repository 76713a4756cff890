namespace WeakSeg.Data.Synthetic;

/// <summary>The surface pattern family of a synthetic object class.</summary>
public enum TextureKind { ShadedSolid, Planks, Stripes, Speckled, Checker, Mottled, Gradient, Dots, Grid, Concentric, Zigzag, Sprinkles }

/// <summary>
/// One object's surface: a texture family with per-instance frequency, phase, angle and two colours, evaluated in the
/// object's local coordinates (so the pattern rotates and scales with the object).
/// </summary>
public sealed class ObjectTexture
{
    public TextureKind Kind { get; }
    public Rgb Primary { get; }
    public Rgb Secondary { get; }
    /// <summary>Pattern frequency in cycles per object half-extent.</summary>
    public double Frequency { get; init; }
    public double Phase { get; init; }
    /// <summary>Pattern direction in radians.</summary>
    public double Angle { get; init; }
    public ulong NoiseSeed { get; init; }
    /// <summary>Light direction (unit vector, local coordinates) for shaded surfaces.</summary>
    public double LightU { get; init; }
    public double LightV { get; init; }

    public ObjectTexture(TextureKind kind, Rgb primary, Rgb secondary) { Kind = kind; Primary = primary; Secondary = secondary; }

    /// <summary>Draws per-instance texture parameters (frequency, phase, angle, light) for <paramref name="kind"/>.</summary>
    public static ObjectTexture Sample(TextureKind kind, Rgb primary, Rgb secondary, SyntheticRandom rng)
    {
        double frequency = kind switch
        {
            TextureKind.Planks => rng.Uniform(2.0, 3.5),
            TextureKind.Stripes => rng.Uniform(1.6, 3.0),
            TextureKind.Checker => rng.Uniform(1.5, 2.6),
            TextureKind.Mottled => rng.Uniform(1.5, 3.0),
            TextureKind.Dots => rng.Uniform(2.2, 3.5),
            TextureKind.Grid => rng.Uniform(1.8, 3.0),
            TextureKind.Concentric => rng.Uniform(1.6, 2.8),
            TextureKind.Zigzag => rng.Uniform(1.8, 3.0),
            TextureKind.Sprinkles => rng.Uniform(5.0, 8.0),
            _ => 1.0,
        };
        double lightAngle = rng.Uniform(0, 2 * Math.PI);
        return new ObjectTexture(kind, primary, secondary)
        {
            Frequency = frequency,
            Phase = rng.Uniform(0, 1),
            Angle = rng.Uniform(0, Math.PI),
            NoiseSeed = rng.NextUInt64(),
            LightU = Math.Cos(lightAngle),
            LightV = Math.Sin(lightAngle),
        };
    }

    public Rgb ColorAt(double u, double v)
    {
        switch (Kind)
        {
            case TextureKind.ShadedSolid: // a lit sphere-like body with a soft highlight
            {
                double r2 = Math.Min(1, u * u + v * v), nz = Math.Sqrt(1 - r2);
                double lambert = Math.Max(0, -(u * LightU + v * LightV) * 0.7 + nz * 0.7);
                double highlight = Math.Pow(Math.Max(0, lambert), 12) * 0.5;
                return Rgb.Lerp(Primary * (0.45 + 0.6 * lambert), new Rgb(1, 1, 1), highlight);
            }
            case TextureKind.Planks: // boards along the long axis with wood grain
            {
                double grain = ValueNoise.Value(u * 9, v * 1.5, NoiseSeed);
                double board = Frac(v * Frequency + Phase + 0.15 * grain);
                bool seam = board < 0.12;
                var c = Rgb.Lerp(Primary, Secondary, 0.35 * grain);
                return seam ? Secondary * 0.7 : c;
            }
            case TextureKind.Stripes:
                return Rgb.Lerp(Primary, Secondary, SoftSquare(Along(u, v) * Frequency + Phase));
            case TextureKind.Speckled: // nearly flat with fine grain
                return Primary * (0.9 + 0.2 * ValueNoise.Value(u * 12, v * 12, NoiseSeed));
            case TextureKind.Checker:
            {
                double a = Along(u, v) * Frequency + Phase, b = Across(u, v) * Frequency;
                return ((long)Math.Floor(a) + (long)Math.Floor(b)) % 2 == 0 ? Primary : Secondary;
            }
            case TextureKind.Mottled:
            {
                double n = ValueNoise.Fbm(u * Frequency + 7, v * Frequency + 3, NoiseSeed, 3);
                return Rgb.Lerp(Primary, Secondary, Smooth(0.35, 0.65, n));
            }
            case TextureKind.Gradient:
                return Rgb.Lerp(Primary, Secondary, Math.Clamp(0.5 + 0.5 * Along(u, v), 0, 1));
            case TextureKind.Dots:
            {
                double a = Frac(Along(u, v) * Frequency + Phase) - 0.5, b = Frac(Across(u, v) * Frequency + Phase) - 0.5;
                return a * a + b * b < 0.09 ? Secondary : Primary;
            }
            case TextureKind.Grid:
            {
                double a = Frac(Along(u, v) * Frequency + Phase), b = Frac(Across(u, v) * Frequency + Phase);
                return a < 0.18 || b < 0.18 ? Secondary : Primary;
            }
            case TextureKind.Concentric:
                return Rgb.Lerp(Primary, Secondary, SoftSquare(Math.Sqrt(u * u + v * v) * Frequency + Phase));
            case TextureKind.Zigzag:
            {
                double tri = Math.Abs(Frac(Across(u, v) * Frequency) - 0.5);
                return Frac(Along(u, v) * Frequency + tri + Phase) < 0.5 ? Primary : Secondary;
            }
            case TextureKind.Sprinkles: // sparse small flecks on a flat body
            {
                double a = u * Frequency, b = v * Frequency;
                long ia = (long)Math.Floor(a), ib = (long)Math.Floor(b);
                double h = ValueNoise.Lattice(ia, ib, NoiseSeed);
                if (h > 0.45) return Primary;
                double cu = ia + 0.3 + 0.4 * ValueNoise.Lattice(ia, ib, NoiseSeed + 1), cv = ib + 0.3 + 0.4 * ValueNoise.Lattice(ia, ib, NoiseSeed + 2);
                double du = a - cu, dv = b - cv;
                return du * du + dv * dv < 0.05 ? Secondary : Primary;
            }
            default:
                return Primary;
        }
    }

    double Along(double u, double v) => u * Math.Cos(Angle) + v * Math.Sin(Angle);
    double Across(double u, double v) => -u * Math.Sin(Angle) + v * Math.Cos(Angle);
    static double Frac(double x) => x - Math.Floor(x);
    static double Smooth(double lo, double hi, double x) { double t = Math.Clamp((x - lo) / (hi - lo), 0, 1); return t * t * (3 - 2 * t); }
    /// <summary>A square wave of period 1 with slightly softened edges, in [0, 1].</summary>
    static double SoftSquare(double x) => Smooth(-0.35, 0.35, Math.Sin(2 * Math.PI * x));
}
