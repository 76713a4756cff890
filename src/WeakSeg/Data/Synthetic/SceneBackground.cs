namespace WeakSeg.Data.Synthetic;

/// <summary>Procedural background families. <see cref="Water"/> is the co-occurrence trap texture (labelled background).</summary>
public enum SceneKind { Clouds, Sky, Grass, Bricks, Sand, Pebbles, Water }

/// <summary>
/// A procedurally textured background, evaluated at normalised image coordinates (x, y) ∈ [0, 1]² (y down). Every pixel of
/// it is labelled background (0), including the pebbles of <see cref="SceneKind.Pebbles"/> (clutter).
/// </summary>
public sealed class SceneBackground
{
    public SceneKind Kind { get; }
    readonly Rgb _c0, _c1, _c2;
    readonly double _frequency, _angle, _phase;
    readonly ulong _seed;
    readonly (double X, double Y, double Rx, double Ry, double Angle, Rgb Color)[] _pebbles = [];

    SceneBackground(SceneKind kind, Rgb c0, Rgb c1, Rgb c2, double frequency, double angle, double phase, ulong seed)
    {
        Kind = kind; _c0 = c0; _c1 = c1; _c2 = c2; _frequency = frequency; _angle = angle; _phase = phase; _seed = seed;
    }

    SceneBackground(SceneKind kind, Rgb c0, Rgb c1, Rgb c2, double frequency, double angle, double phase, ulong seed,
                    (double, double, double, double, double, Rgb)[] pebbles) : this(kind, c0, c1, c2, frequency, angle, phase, seed)
        => _pebbles = pebbles;

    public static string Name(SceneKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>Draws the colours and pattern parameters of a background of <paramref name="kind"/>.</summary>
    public static SceneBackground Sample(SceneKind kind, SyntheticRandom rng)
    {
        ulong seed = rng.NextUInt64();
        double angle = rng.Uniform(0, 2 * Math.PI), phase = rng.Uniform(0, 1);
        switch (kind)
        {
            case SceneKind.Clouds:
            {
                double h = rng.Uniform(0, 360);
                return new(kind, Rgb.FromHsv(h, rng.Uniform(0.1, 0.5), rng.Uniform(0.25, 0.55)),
                           Rgb.FromHsv(h + rng.Uniform(30, 90), rng.Uniform(0.1, 0.5), rng.Uniform(0.5, 0.85)),
                           Rgb.FromHsv(h - rng.Uniform(20, 60), rng.Uniform(0.05, 0.35), rng.Uniform(0.6, 0.95)),
                           rng.Uniform(2.5, 5), angle, phase, seed);
            }
            case SceneKind.Sky:
            {
                double h = rng.Uniform(0, 360);
                return new(kind, Rgb.FromHsv(h, rng.Uniform(0.15, 0.6), rng.Uniform(0.55, 0.95)),
                           Rgb.FromHsv(h + rng.Uniform(-60, 60), rng.Uniform(0.1, 0.6), rng.Uniform(0.2, 0.6)),
                           default, rng.Uniform(1.5, 3), angle, phase, seed);
            }
            case SceneKind.Grass:
            {
                double h = rng.Uniform(55, 135);
                return new(kind, Rgb.FromHsv(h, rng.Uniform(0.45, 0.8), rng.Uniform(0.15, 0.35)),
                           Rgb.FromHsv(h + rng.Uniform(-15, 15), rng.Uniform(0.4, 0.75), rng.Uniform(0.5, 0.8)),
                           Rgb.FromHsv(rng.Uniform(30, 50), rng.Uniform(0.3, 0.6), rng.Uniform(0.3, 0.55)),
                           rng.Uniform(28, 45), 0, phase, seed);
            }
            case SceneKind.Bricks:
            {
                double h = rng.Uniform(-10, 40), s = rng.Chance(0.25) ? rng.Uniform(0, 0.12) : rng.Uniform(0.35, 0.7);
                return new(kind, Rgb.FromHsv(h, s, rng.Uniform(0.4, 0.7)),
                           Rgb.FromHsv(h + rng.Uniform(-10, 10), s * 0.8, rng.Uniform(0.25, 0.45)),
                           Rgb.FromHsv(rng.Uniform(30, 60), rng.Uniform(0, 0.15), rng.Uniform(0.65, 0.9)),
                           rng.Between(5, 9), 0, phase, seed);
            }
            case SceneKind.Sand:
            {
                double h = rng.Uniform(25, 50);
                return new(kind, Rgb.FromHsv(h, rng.Uniform(0.25, 0.5), rng.Uniform(0.6, 0.88)),
                           Rgb.FromHsv(h + rng.Uniform(-8, 8), rng.Uniform(0.3, 0.55), rng.Uniform(0.4, 0.62)),
                           default, rng.Uniform(3, 6), rng.Uniform(-0.4, 0.4), phase, seed);
            }
            case SceneKind.Pebbles:
            {
                double h = rng.Uniform(0, 360);
                var baseColor = Rgb.FromHsv(h, rng.Uniform(0.05, 0.3), rng.Uniform(0.3, 0.6));
                int count = rng.Between(14, 30);
                var pebbles = new (double, double, double, double, double, Rgb)[count];
                for (int i = 0; i < count; i++)
                {
                    double r = rng.Uniform(0.015, 0.045);
                    pebbles[i] = (rng.NextDouble(), rng.NextDouble(), r, r * rng.Uniform(0.55, 1), rng.Uniform(0, Math.PI),
                                  Rgb.FromHsv(h + rng.Uniform(-50, 50), rng.Uniform(0.05, 0.35), rng.Uniform(0.35, 0.85)));
                }
                return new(kind, baseColor, Rgb.FromHsv(h + 20, rng.Uniform(0.05, 0.3), rng.Uniform(0.2, 0.45)), default,
                           rng.Uniform(4, 8), angle, phase, seed, pebbles);
            }
            case SceneKind.Water:
            {
                double h = rng.Uniform(185, 225);
                return new(kind, Rgb.FromHsv(h, rng.Uniform(0.5, 0.85), rng.Uniform(0.3, 0.55)),
                           Rgb.FromHsv(h + rng.Uniform(-10, 10), rng.Uniform(0.35, 0.7), rng.Uniform(0.55, 0.8)),
                           Rgb.FromHsv(h, rng.Uniform(0.05, 0.2), rng.Uniform(0.88, 1.0)),
                           rng.Uniform(7, 12), rng.Uniform(-0.12, 0.12), phase, seed);
            }
            default: throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    public Rgb ColorAt(double x, double y)
    {
        switch (Kind)
        {
            case SceneKind.Clouds:
            {
                double n = ValueNoise.Fbm(x * _frequency, y * _frequency, _seed, 5);
                double t = Math.Clamp((n - 0.25) / 0.5, 0, 1);
                return t < 0.5 ? Rgb.Lerp(_c0, _c1, t * 2) : Rgb.Lerp(_c1, _c2, t * 2 - 1);
            }
            case SceneKind.Sky:
            {
                double t = 0.5 + 0.7 * ((x - 0.5) * Math.Cos(_angle) + (y - 0.5) * Math.Sin(_angle));
                t += 0.12 * (ValueNoise.Fbm(x * _frequency, y * _frequency, _seed, 3) - 0.5);
                return Rgb.Lerp(_c0, _c1, Math.Clamp(t, 0, 1));
            }
            case SceneKind.Grass: // vertical blades: fast variation across x, slow along y
            {
                double blades = ValueNoise.Fbm(x * _frequency, y * _frequency * 0.12, _seed, 3);
                double patches = ValueNoise.Fbm(x * 3, y * 3, _seed + 99, 3);
                var c = Rgb.Lerp(_c0, _c1, Math.Clamp((blades - 0.3) / 0.4, 0, 1));
                return Rgb.Lerp(c, _c2, Math.Clamp((patches - 0.55) * 2.5, 0, 0.6));
            }
            case SceneKind.Bricks:
            {
                double rows = _frequency, by = y * rows;
                long row = (long)Math.Floor(by);
                double bx = x * rows / 2 + (row % 2 == 0 ? 0 : 0.5) + _phase;
                long col = (long)Math.Floor(bx);
                double fy = by - row, fx = bx - col;
                if (fy < 0.1 || fx < 0.05) return _c2 * (0.9 + 0.1 * ValueNoise.Value(x * 60, y * 60, _seed));
                double jitter = ValueNoise.Lattice(col, row, _seed);
                var brick = Rgb.Lerp(_c0, _c1, jitter);
                return brick * (0.85 + 0.25 * ValueNoise.Fbm(x * 25, y * 25, _seed + 7, 2));
            }
            case SceneKind.Sand: // dune bands plus per-position grain
            {
                double along = y * Math.Cos(_angle) + x * Math.Sin(_angle);
                double dune = 0.5 + 0.5 * Math.Sin(2 * Math.PI * (along * _frequency + 0.6 * ValueNoise.Fbm(x * 2, y * 2, _seed, 3) + _phase));
                double grain = ValueNoise.Value(x * 90, y * 90, _seed + 5) - 0.5;
                return Rgb.Lerp(_c0, _c1, dune * 0.6) * (1 + 0.18 * grain);
            }
            case SceneKind.Pebbles:
            {
                foreach (var p in _pebbles)
                {
                    double dx = x - p.X, dy = y - p.Y, c = Math.Cos(p.Angle), s = Math.Sin(p.Angle);
                    double a = (dx * c + dy * s) / p.Rx, b = (-dx * s + dy * c) / p.Ry, r2 = a * a + b * b;
                    if (r2 <= 1) return p.Color * (1.05 - 0.35 * r2);
                }
                double n = ValueNoise.Fbm(x * _frequency, y * _frequency, _seed, 4);
                return Rgb.Lerp(_c1, _c0, n);
            }
            case SceneKind.Water: // horizontal wave bands with noise-warped crests and bright glints
            {
                double warp = ValueNoise.Fbm(x * 3, y * 5, _seed, 3);
                double yy = y + _angle * (x - 0.5);
                double w = Math.Sin(2 * Math.PI * (yy * _frequency + 0.8 * warp + _phase));
                double ripple = Math.Sin(2 * Math.PI * (yy * _frequency * 2.7 + x * 1.3 + 0.5 * warp));
                double t = Math.Clamp(0.5 + 0.35 * w + 0.15 * ripple, 0, 1);
                var c = Rgb.Lerp(_c0, _c1, t);
                double glint = w > 0.85 && ValueNoise.Value(x * 40, y * 12, _seed + 3) > 0.6 ? 0.6 : 0;
                return Rgb.Lerp(c, _c2, glint);
            }
            default:
                return _c0;
        }
    }
}
