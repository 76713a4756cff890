namespace WeakSeg.Data;

/// <summary>
/// A small counter-free PRNG (SplitMix64) whose stream depends only on its seed words. The loader seeds one per
/// (seed, epoch, sample index) so augmentation never depends on thread timing.
/// </summary>
public struct DeterministicRandom
{
    ulong _state;

    public DeterministicRandom(long seed) => _state = Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL);

    /// <summary>A generator for the tuple (a, b, c); distinct tuples give unrelated streams.</summary>
    public DeterministicRandom(long a, long b, long c)
    {
        ulong h = Mix((ulong)a ^ 0x243F6A8885A308D3UL);
        h = Mix(h ^ (ulong)b * 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ (ulong)c * 0xC2B2AE3D27D4EB4FUL);
        _state = h;
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [min, max).</summary>
    public double Uniform(double min, double max) => min + (max - min) * NextDouble();

    /// <summary>Uniform integer in [0, n) (n &gt; 0), without modulo bias.</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        ulong bound = (ulong)n, limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong v;
        do v = NextUInt64(); while (v >= limit);
        return (int)(v % bound);
    }

    /// <summary>Uniform integer in [min, max] inclusive.</summary>
    public int NextInclusive(int min, int max) => min + NextInt(max - min + 1);

    /// <summary>A permutation of 0..n-1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
