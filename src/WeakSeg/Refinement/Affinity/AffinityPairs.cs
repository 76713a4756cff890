namespace WeakSeg.Refinement.Affinity;

/// <summary>
/// The pixel pairs an affinity network is trained and evaluated on (PSA, Ahn and Kwak CVPR 2018: pairs closer than a radius γ
/// on the feature grid). Offsets are the "forward half" of the disc, as PSA's search list: (0, dx) for 1 ≤ dx &lt; r, then
/// (dy, dx) for 1 ≤ dy &lt; r, −r &lt; dx &lt; r with dx² + dy² &lt; r² — so each unordered pair appears once. Radius 5 (PSA
/// train_aff.py / infer_aff.py) gives 34 offsets; radius 2 gives the 4 forward 8-neighbours.
/// </summary>
/// <remarks>PSA restricts the "from" pixels to a crop where every offset stays inside the grid; here every pair whose
/// two ends are inside the grid is used, so border pixels take part too.</remarks>
public static class AffinityPairs
{
    /// <summary>Forward half-disc offsets (dy, dx) with dx² + dy² &lt; radius², in PSA's order.</summary>
    public static IReadOnlyList<(int Dy, int Dx)> Offsets(int radius)
    {
        if (radius < 1) throw new WeakSegException($"affinity radius must be ≥ 1 (got {radius})");
        var offsets = new List<(int, int)>();
        for (int dx = 1; dx < radius; dx++) offsets.Add((0, dx));
        for (int dy = 1; dy < radius; dy++)
            for (int dx = -radius + 1; dx < radius; dx++)
                if (dx * dx + dy * dy < radius * radius) offsets.Add((dy, dx));
        return offsets;
    }

    /// <summary>
    /// Every unordered pair (from, to) of a row-major h×w grid within the radius, both ends inside the grid, as flat
    /// indices y·w + x. Ordered by offset, then by "from" pixel (row-major).
    /// </summary>
    public static (long[] From, long[] To) Indices(int height, int width, int radius)
    {
        if (height < 1 || width < 1) throw new WeakSegException($"affinity grid {height}×{width} must be at least 1×1");
        var from = new List<long>();
        var to = new List<long>();
        foreach (var (dy, dx) in Offsets(radius))
            for (int y = 0; y + dy < height; y++)
                for (int x = Math.Max(0, -dx); x < width && x + dx < width; x++)
                {
                    from.Add((long)y * width + x);
                    to.Add((long)(y + dy) * width + x + dx);
                }
        return (from.ToArray(), to.ToArray());
    }
}
