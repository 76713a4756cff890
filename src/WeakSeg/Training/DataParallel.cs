using TorchSharp;
using WeakSeg.Runtime;
using static TorchSharp.torch;

namespace WeakSeg.Training;

/// <summary>
/// The collectives of data-parallel training (<see cref="Trainer"/> with a <see cref="ProcessGroup"/> of N &gt; 1 ranks): every rank
/// holds the same weights, computes the loss on its shard of the global batch, and the ranks average their gradients with
/// MPI_Allreduce before the (identical) optimizer step. Gradients travel in bucketed flat float32 buffers of at most
/// <see cref="BucketElements"/> elements (one MPI call per bucket instead of one per parameter).
/// </summary>
public static class DataParallel
{
    /// <summary>Elements per gradient bucket (4 Mi floats = 16 MiB, the order of PyTorch DDP's 25 MB buckets).</summary>
    public const int BucketElements = 1 << 22;

    /// <summary>The log line of a data-parallel run: the global batch, its split, and the learning rate (unchanged: the global batch
    /// is the configured batch, so the run follows the one-process recipe).</summary>
    public static string Describe(ProcessGroup group, TrainerOptions options) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"data-parallel over {group.Size} MPI ranks: global batch {options.BatchSize} = {options.BatchSize / Math.Max(1, group.Size)} images per rank × {group.Size}, " +
        $"peak learning rate {options.BaseLr:G6} (the configured batch and rate, as in one process); gradients averaged with MPI_Allreduce; rank 0 writes the run");

    /// <summary>Copies rank 0's parameters and buffers into every rank's <paramref name="model"/> (identical starting weights
    /// whatever each rank's initialisation or file system saw). Each tensor travels through a contiguous CPU copy, broadcast in place
    /// on its memory.</summary>
    public static void BroadcastModel(ProcessGroup group, nn.Module model)
    {
        if (!group.IsDistributed) return;
        using var noGrad = torch.no_grad();
        var tensors = model.named_parameters().Select(p => (Tensor)p.parameter).Concat(model.named_buffers().Select(b => b.buffer)).ToList();
        foreach (var t in tensors)
        {
            using var scope = torch.NewDisposeScope();
            var copy = t.detach().cpu().contiguous().clone();                  // its own memory, whatever t's device and layout
            if (copy.numel() == 0) continue;
            group.Broadcast(copy.bytes);
            if (!group.IsRoot) t.copy_(copy.to(t.device));
        }
    }

    /// <summary>
    /// Sums (count, count·loss, count·part…) over ranks and returns the global image count and the image-weighted mean loss and
    /// parts, identical on every rank (a non-finite value on any rank makes the global value non-finite everywhere).
    /// </summary>
    public static (long Count, float Loss, IReadOnlyList<LossPart> Parts) ReduceLoss(ProcessGroup group, int count, float loss, IReadOnlyList<LossPart> parts)
    {
        var values = new double[2 + parts.Count];
        values[0] = count;
        values[1] = (double)loss * count;
        for (int i = 0; i < parts.Count; i++) values[2 + i] = (double)parts[i].Value * count;
        group.AllreduceSum(values);
        double total = values[0];
        return ((long)total, (float)(values[1] / total),
            parts.Select((p, i) => new LossPart(p.Name, (float)(values[2 + i] / total))).ToList());
    }

    /// <summary>
    /// Replaces each rank's gradients by their image-weighted mean over ranks: every rank scales its gradients by
    /// localCount / globalCount (1/N for equal shards), then the buckets are summed with MPI_Allreduce. All ranks must pass the
    /// same parameters in the same order, each with a gradient (checked: a parameter with a gradient on some ranks only is an error
    /// every rank reports). <paramref name="buckets"/> holds the flat buffers from step to step.
    /// </summary>
    public static void AverageGradients(ProcessGroup group, GradientBuckets buckets, IReadOnlyList<(string Name, Tensor Grad)> grads,
        int parameterCount, long localCount, long globalCount)
    {
        if (!group.IsDistributed) return;
        Span<long> shape = [grads.Count, -grads.Count];
        group.AllreduceMax(shape);
        if (shape[0] != -shape[1] || grads.Count != shape[0])
            throw ProcessGroup.Agreed(new WeakSegException($"the ranks' gradients differ in number ({grads.Count} of {parameterCount} parameters " +
                $"on rank {group.Rank}, between {-shape[1]} and {shape[0]} on others): data-parallel training needs every trainable parameter " +
                "to receive a gradient on every rank, or on none"));
        foreach (var (name, grad) in grads)
            if (grad.dtype != ScalarType.Float32)
                throw new WeakSegException($"data-parallel training averages float32 gradients; {name} has {grad.dtype}");
        using var weight = ((double)localCount / globalCount).ToScalar();   // held until the native calls using it have returned
        buckets.Reduce(group, grads, weight);
    }
}

/// <summary>
/// The flat float32 CPU buffers the gradients travel in (<see cref="DataParallel.AverageGradients"/>): consecutive gradients are packed
/// into buckets of at most <see cref="DataParallel.BucketElements"/> elements (a gradient larger than that is a bucket of its own);
/// each bucket is gathered, scaled and summed over ranks by MPI_Allreduce in place on the buffer's native memory, then copied back
/// into the gradients. The buffers are allocated once (again only if the gradients' sizes change), so a step allocates no managed
/// arrays and no tensors for the all-reduce.
/// </summary>
public sealed class GradientBuckets : IDisposable
{
    long[] _sizes = [];
    readonly List<(int Start, int End, Tensor Buffer)> _buckets = [];

    /// <summary>The number of buckets of the current layout.</summary>
    public int Count => _buckets.Count;

    internal void Reduce(ProcessGroup group, IReadOnlyList<(string Name, Tensor Grad)> grads, Scalar weight)
    {
        EnsureLayout(grads);
        using var noGrad = torch.no_grad();
        foreach (var (start, end, buffer) in _buckets)
        {
            using var scope = torch.NewDisposeScope();
            long offset = 0;
            for (int i = start; i < end; i++)
            {
                long n = _sizes[i];
                buffer.narrow(0, offset, n).copy_(grads[i].Grad.detach().reshape(-1));
                offset += n;
            }
            buffer.mul_(weight);
            group.AllreduceSum(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(buffer.bytes));
            offset = 0;
            for (int i = start; i < end; i++)
            {
                var g = grads[i].Grad;
                long n = _sizes[i];
                g.copy_(buffer.narrow(0, offset, n).view(g.shape));
                offset += n;
            }
        }
    }

    void EnsureLayout(IReadOnlyList<(string Name, Tensor Grad)> grads)
    {
        if (_sizes.Length == grads.Count && grads.Select((g, i) => g.Grad.numel() == _sizes[i]).All(same => same)) return;
        Dispose();
        _sizes = grads.Select(g => g.Grad.numel()).ToArray();
        int start = 0;
        while (start < grads.Count)
        {
            int end = start;
            long elements = 0;
            while (end < grads.Count && (end == start || elements + _sizes[end] <= DataParallel.BucketElements)) elements += _sizes[end++];
            _buckets.Add((start, end, torch.empty(elements, ScalarType.Float32).DetachFromDisposeScope()));
            start = end;
        }
    }

    public void Dispose()
    {
        foreach (var (_, _, buffer) in _buckets) buffer.Dispose();
        _buckets.Clear();
    }
}
