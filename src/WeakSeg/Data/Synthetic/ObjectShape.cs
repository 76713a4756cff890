namespace WeakSeg.Data.Synthetic;

/// <summary>The outline family of a synthetic object class.</summary>
public enum ShapeKind { Disc, Boat, Triangle, Star, Cross, Blob, Crescent, Ring, Hexagon, Heart, Diamond, Arrow }

/// <summary>
/// One object outline with its per-instance parameters, tested in object-local coordinates (u right, v down) where the
/// object fits the square [-1, 1]² (the heart reaches slightly further). Scale, rotation, aspect and mirroring are applied
/// by <see cref="ObjectPlacement"/>; this type only answers "is (u, v) inside the outline".
/// </summary>
public sealed class ObjectShape
{
    public ShapeKind Kind { get; }
    /// <summary>Shape parameters (meaning depends on <see cref="Kind"/>; see <see cref="Sample"/>).</summary>
    public double A { get; init; }
    public double B { get; init; }
    public double C { get; init; }
    public double D { get; init; }
    public int Points { get; init; }
    /// <summary>Blob outline harmonics: amplitude and phase of cos(kθ + φ) for k = 2, 3, 4.</summary>
    public double[] Harmonics { get; init; } = [];

    public ObjectShape(ShapeKind kind) => Kind = kind;

    /// <summary>Draws the per-instance parameters of a shape of <paramref name="kind"/> (intra-class variation).</summary>
    public static ObjectShape Sample(ShapeKind kind, SyntheticRandom rng) => kind switch
    {
        ShapeKind.Disc => new ObjectShape(kind),
        // A = hull top (v), B = hull depth, C = bottom half-width ratio (taper), D = mast position (u)
        ShapeKind.Boat => new ObjectShape(kind) { A = rng.Uniform(0.0, 0.15), B = rng.Uniform(0.28, 0.42), C = rng.Uniform(0.55, 0.8), D = rng.Uniform(-0.35, 0.05) },
        ShapeKind.Triangle => new ObjectShape(kind),
        // A = inner radius ratio, Points = number of spikes
        ShapeKind.Star => new ObjectShape(kind) { A = rng.Uniform(0.38, 0.55), Points = rng.Between(5, 6) },
        // A = arm half-width
        ShapeKind.Cross => new ObjectShape(kind) { A = rng.Uniform(0.24, 0.38) },
        ShapeKind.Blob => new ObjectShape(kind)
        {
            Harmonics = [rng.Uniform(0.05, 0.16), rng.Uniform(0, 2 * Math.PI), rng.Uniform(0.03, 0.13), rng.Uniform(0, 2 * Math.PI),
                         rng.Uniform(0.02, 0.09), rng.Uniform(0, 2 * Math.PI)],
        },
        // A = bite disc centre offset (u), B = bite disc radius
        ShapeKind.Crescent => new ObjectShape(kind) { A = rng.Uniform(0.35, 0.6), B = rng.Uniform(0.72, 0.92) },
        // A = inner radius ratio
        ShapeKind.Ring => new ObjectShape(kind) { A = rng.Uniform(0.45, 0.68) },
        ShapeKind.Hexagon => new ObjectShape(kind),
        ShapeKind.Heart => new ObjectShape(kind),
        // A = half-width of the rhombus (half-height 1)
        ShapeKind.Diamond => new ObjectShape(kind) { A = rng.Uniform(0.5, 0.78) },
        // A = shaft half-height, B = head half-height, C = head start (u)
        ShapeKind.Arrow => new ObjectShape(kind) { A = rng.Uniform(0.14, 0.24), B = rng.Uniform(0.55, 0.8), C = rng.Uniform(0.05, 0.35) },
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    static readonly double Sqrt3 = Math.Sqrt(3);

    public bool Inside(double u, double v)
    {
        switch (Kind)
        {
            case ShapeKind.Disc:
                return u * u + v * v <= 1;
            case ShapeKind.Ring:
            {
                double r2 = u * u + v * v;
                return r2 <= 1 && r2 >= A * A;
            }
            case ShapeKind.Triangle: // equilateral, inscribed in the unit circle, apex up
                return v <= 0.5 && v >= Sqrt3 * Math.Abs(u) - 1;
            case ShapeKind.Hexagon: // regular, inscribed in the unit circle, vertices at (±1, 0)
            {
                double ax = Math.Abs(u), ay = Math.Abs(v);
                return ay <= Sqrt3 / 2 && Sqrt3 * ax + ay <= Sqrt3;
            }
            case ShapeKind.Star:
                return Math.Sqrt(u * u + v * v) <= StarRadius(Math.Atan2(v, u), Points, A);
            case ShapeKind.Cross:
            {
                double ax = Math.Abs(u), ay = Math.Abs(v);
                return ax <= 1 && ay <= 1 && (ax <= A || ay <= A);
            }
            case ShapeKind.Blob:
            {
                double r = Math.Sqrt(u * u + v * v);
                return r <= BlobRadius(Math.Atan2(v, u));
            }
            case ShapeKind.Crescent:
            {
                double du = u - A, dv = v + 0.15 * A;
                return u * u + v * v <= 1 && du * du + dv * dv > B * B;
            }
            case ShapeKind.Heart: // the sextic heart (x²+y²−1)³ − x²y³ ≤ 0, y up, fitted to about [-1, 1]²
            {
                double x = u * 1.14, y = -v * 1.1 + 0.12;
                double q = x * x + y * y - 1;
                return q * q * q - x * x * y * y * y <= 0;
            }
            case ShapeKind.Diamond:
                return Math.Abs(u) / A + Math.Abs(v) <= 1;
            case ShapeKind.Arrow: // shaft from u = −1 to C, triangular head from C to 1
                if (u < -1 || u > 1) return false;
                if (u <= C) return Math.Abs(v) <= A;
                return Math.Abs(v) <= B * (1 - u) / (1 - C);
            case ShapeKind.Boat: // trapezoid hull below a mast with a right-angled sail
            {
                double top = A, depth = B;
                if (v >= top && v <= top + depth)
                {
                    double t = (v - top) / depth;
                    return Math.Abs(u) <= 1 - (1 - C) * t;
                }
                double mast = D;
                if (v < top && v >= -0.95 && Math.Abs(u - mast) <= 0.07) return true;
                // sail: right triangle with its right angle at (mast + 0.09, top − 0.06)
                double su = u - (mast + 0.09), sv = (top - 0.06) - v;
                double width = 0.8, height = 0.85 + top;
                return su >= 0 && sv >= 0 && su / width + sv / height <= 1;
            }
            default:
                return false;
        }
    }

    /// <summary>Boundary radius along angle <paramref name="theta"/> of a star with <paramref name="points"/> spikes (outer radius 1, inner radius <paramref name="inner"/>), first spike pointing up.</summary>
    public static double StarRadius(double theta, int points, double inner)
    {
        double step = Math.PI / points; // angle between an outer vertex and the next inner vertex
        double t = theta + Math.PI / 2; // first spike at θ = −π/2 (up, v down)
        t -= 2 * step * Math.Floor(t / (2 * step));
        // t in [0, 2·step): segment from outer (angle 0, radius 1) to inner (angle step, radius inner), mirrored after step
        if (t > step) t = 2 * step - t;
        // intersection of the ray at angle t with the segment between the two vertices
        return inner * Math.Sin(step) / (Math.Sin(t) + inner * Math.Sin(step - t));
    }

    double BlobRadius(double theta)
    {
        double sum = 0, amp = 0;
        for (int k = 0; k < 3; k++)
        {
            sum += Harmonics[2 * k] * Math.Cos((k + 2) * theta + Harmonics[2 * k + 1]);
            amp += Harmonics[2 * k];
        }
        return (1 + sum) / (1 + amp);
    }
}
