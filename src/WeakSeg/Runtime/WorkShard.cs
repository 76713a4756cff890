using System.Globalization;

namespace WeakSeg.Runtime;

/// <summary>
/// One part of a per-image stage's images: shard <see cref="Index"/> of <see cref="Count"/> takes the images whose name hashes
/// (64-bit FNV-1a of the UTF-8 name) to Index modulo Count. The choice depends on the image's name only, never on a listing, so a
/// job-array task finds the same images in every stage (its pseudo labels come from its own maps, whether or not the other tasks
/// have finished), and the shards of one N cover every image exactly once. Each image's output depends on that image only, so the
/// union of the shards' outputs is the output of one process. A shard comes from the MPI rank (<see cref="Resolve"/> under
/// mpirun, with <see cref="Group"/> set) or from <c>--shard i/N</c> for job arrays without MPI (<see cref="Parse"/>).
/// </summary>
public sealed record WorkShard(int Index, int Count)
{
    /// <summary>Every image (one process).</summary>
    public static readonly WorkShard All = new(0, 1);

    /// <summary>The MPI ranks this shard is one of (null for one process or a --shard job): their counts are summed, and rank 0
    /// claims output folders for all of them.</summary>
    public ProcessGroup? Group { get; init; }

    public bool IsWhole => Count == 1;

    /// <summary>Whether the image <paramref name="name"/> belongs to this shard.</summary>
    public bool Contains(string name) => IsWhole || (int)(NameHash(name) % (ulong)Count) == Index;

    /// <summary>The items of <paramref name="items"/> whose name belongs to this shard, in list order.</summary>
    public IReadOnlyList<T> Select<T>(IReadOnlyList<T> items, Func<T, string> nameOf) =>
        IsWhole ? items : items.Where(item => Contains(nameOf(item))).ToList();

    /// <summary>The names of <paramref name="names"/> that belong to this shard, in list order.</summary>
    public IReadOnlyList<string> Select(IReadOnlyList<string> names) => Select(names, n => n);

    /// <summary>64-bit FNV-1a of the UTF-8 bytes of <paramref name="name"/> (stable across runs, machines and .NET versions).</summary>
    public static ulong NameHash(string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(name)) h = unchecked((h ^ b) * 1099511628211UL);
        return h;
    }

    /// <summary>Sums per-shard counts over the MPI ranks (in place); a --shard job or one process keeps its own.</summary>
    public void SumOverRanks(Span<long> counts) => Group?.AllreduceSum(counts);

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

    /// <summary>The shard of this process: the MPI rank's under mpirun/srun, else <paramref name="requested"/> (from --shard), else
    /// every image. Both at once is an error: an MPI job already splits the images.</summary>
    public static WorkShard Resolve(string? requested)
    {
        var world = ProcessGroup.LaunchedByMpi ? ProcessGroup.World : null;
        if (world is { IsDistributed: true })
        {
            if (requested is not null)
                throw new WeakSegException($"--shard {requested}: this process is one of {world.Size} MPI ranks, which already split the images; use one or the other");
            return ForGroup(world);
        }
        return requested is null ? All : Parse(requested);
    }

    /// <summary>Rank r of N takes shard r/N (every image for one process).</summary>
    public static WorkShard ForGroup(ProcessGroup group) => group.IsDistributed ? new(group.Rank, group.Size) { Group = group } : All;
}
