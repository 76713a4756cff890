using System.CommandLine;
using WeakSeg.Runtime;

namespace WeakSeg.Cli.Options;

/// <summary>`--shard i/N` of the per-image stages (cam, pseudo, crf, affinity infer, seg-infer, eval).</summary>
internal static class ShardOption
{
    public static Option<string?> Create() => new("--shard")
    {
        Description = "Process only shard i of N (1 ≤ i ≤ N) of the images, for job arrays without MPI (e.g. --shard $SLURM_ARRAY_TASK_ID/8). " +
                      "Images are assigned by a hash of their name, so the N jobs together write exactly the outputs of one process. " +
                      "Under mpirun the ranks split the images by themselves.",
    };

    /// <summary>This process's shard: the MPI rank's, the --shard value's, or every image.</summary>
    public static WorkShard Resolve(ParseResult parseResult, Option<string?> option) => WorkShard.Resolve(parseResult.GetValue(option));

    /// <summary>" (shard i/N)" after a --shard job's summary (its counts are its own); "" for one process or MPI (counts are the job's).</summary>
    public static string Suffix(WorkShard shard) => shard.IsWhole || shard.Group is not null ? "" : $" (shard {shard})";
}
