using WeakSeg.IO;
using WeakSeg.Runtime;

namespace WeakSeg.Evaluation;

/// <summary>How a per-image stage takes its output folder when its images are split (<see cref="WorkShard"/>).</summary>
public static class ShardedOutputs
{
    /// <summary>
    /// Locks <paramref name="directory"/> and runs <paramref name="claim"/> (recording the folder's settings): one process takes the
    /// folder alone; under MPI, rank 0 takes it for every rank and its failure fails all ranks; a <c>--shard i/N</c> job takes a
    /// shared lock, so the jobs of one array write side by side. The settings record never mentions the shard: every shard of the
    /// same stage records the same settings. Returns the lock to hold while writing (null on MPI ranks other than 0).
    /// </summary>
    public static IDisposable? Claim(WorkShard shard, string directory, Action claim)
    {
        if (shard.Group is { IsDistributed: true } group)
        {
            FolderLock? held = null;
            group.OnRoot(() =>
            {
                held = FolderLock.Acquire(directory, "output folder");
                claim();
            });
            return held;
        }
        var folderLock = FolderLock.Acquire(directory, "output folder", shared: !shard.IsWhole);
        try { claim(); }
        catch { folderLock.Dispose(); throw; }
        return folderLock;
    }
}
