using System.Globalization;

namespace WeakSeg.Runtime;

/// <summary>
/// One part of a per-image stage's image list: shard <see cref="Index"/> of <see cref="Count"/> takes the images at positions
/// Index, Index + Count, Index + 2·Count, … of the list (round robin, so shards of a list sorted by size stay balanced). The shards
/// of one N together cover the list exactly once, and each image's output depends on that image only, so the union of the
/// shards' outputs is the output of one process. A shard comes from the MPI rank (<see cref="ForWorld"/>) or from
/// <c>--shard i/N</c> for job arrays without MPI (<see cref="Parse"/>).
/// </summary>
public sealed record WorkShard(int Index, int Count)
{
    /// <summary>The whole list (one process).</summary>
    public static readonly WorkShard All = new(0, 1);

    public bool IsWhole => Count == 1;

    /// <summary>The positions of a list of <paramref name="total"/> items that belong to this shard, ascending.</summary>
    public IEnumerable<int> Positions(int total)
    {
        for (int i = Index; i < total; i += Count) yield return i;
    }

    /// <summary>The items of <paramref name="items"/> that belong to this shard, in list order.</summary>
    public IReadOnlyList<T> Select<T>(IReadOnlyList<T> items) => IsWhole ? items : Positions(items.Count).Select(i => items[i]).ToList();

    /// <summary>"i/N" (1-based i, as job arrays count: 1/4 … 4/4).</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index + 1}/{Count}");

    /// <summary>Parses <c>i/N</c> with 1 ≤ i ≤ N (e.g. <c>--shard $SLURM_ARRAY_TASK_ID/8</c> with array ids 1–8). One error line otherwise.</summary>
    public static WorkShard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var i)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 && i >= 1 && i <= n)
            return new WorkShard(i - 1, n);
        throw new WeakSegException($"--shard {text}: expected i/N with 1 ≤ i ≤ N (e.g. 1/4 … 4/4 for four jobs)");
    }

    /// <summary>The shard of this process: <paramref name="requested"/> (from --shard) without MPI, the MPI rank's under mpirun
    /// (both at once is an error: an MPI job already splits the list).</summary>
    public static WorkShard Resolve(string? requested)
    {
        var world = ProcessGroup.LaunchedByMpi ? ProcessGroup.World : null;
        if (requested is not null)
        {
            if (world is { IsDistributed: true })
                throw new WeakSegException($"--shard {requested}: this process is one of {world.Size} MPI ranks, which already split the images; use one or the other");
            return Parse(requested);
        }
        return world is null ? All : ForWorld(world);
    }

    /// <summary>Rank r of N takes shard r/N.</summary>
    public static WorkShard ForWorld(ProcessGroup world) => new(world.Rank, world.Size);
}
