namespace WeakSeg.Data.Synthetic;

/// <summary>Hash-based 2-D value noise and fractional Brownian motion (fBm), deterministic for a given seed.</summary>
public static class ValueNoise
{
    /// <summary>A uniform value in [0, 1) attached to the integer lattice point (ix, iy).</summary>
    public static double Lattice(long ix, long iy, ulong seed)
    {
        ulong h = SyntheticRandom.Finalize(seed ^ SyntheticRandom.Finalize((ulong)ix * 0x9E3779B97F4A7C15UL + (ulong)iy * 0xC2B2AE3D27D4EB4FUL));
        return (h >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>Value noise in [0, 1): lattice values blended with a quintic fade (C2-smooth).</summary>
    public static double Value(double x, double y, ulong seed)
    {
        double fx = Math.Floor(x), fy = Math.Floor(y);
        long ix = (long)fx, iy = (long)fy;
        double tx = Fade(x - fx), ty = Fade(y - fy);
        double a = Lattice(ix, iy, seed), b = Lattice(ix + 1, iy, seed);
        double c = Lattice(ix, iy + 1, seed), d = Lattice(ix + 1, iy + 1, seed);
        double top = a + (b - a) * tx, bottom = c + (d - c) * tx;
        return top + (bottom - top) * ty;
    }

    static double Fade(double t) => t * t * t * (t * (t * 6 - 15) + 10);

    /// <summary>fBm: sum of <paramref name="octaves"/> value-noise layers (frequency ×2, amplitude ×gain), normalised to [0, 1).</summary>
    public static double Fbm(double x, double y, ulong seed, int octaves = 4, double gain = 0.5)
    {
        double sum = 0, amplitude = 1, norm = 0, frequency = 1;
        for (int o = 0; o < octaves; o++)
        {
            sum += amplitude * Value(x * frequency, y * frequency, seed + (ulong)o * 0x51ED270B27D4EB4FUL);
            norm += amplitude;
            amplitude *= gain;
            frequency *= 2;
        }
        return sum / norm;
    }
}
