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
    /// whatever each rank's initialisation or file system saw).</summary>
    public static void BroadcastModel(ProcessGroup group, nn.Module model)
    {
        if (!group.IsDistributed) return;
        using var noGrad = torch.no_grad();
        var tensors = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(model.named_buffers().Select(b => (b.name, b.buffer))).ToList();
        foreach (var (name, t) in tensors)
        {
            using var scope = torch.NewDisposeScope();
            var cpu = t.detach().cpu().contiguous();
            var bytes = RawBytes(cpu, name);
            group.Broadcast(bytes);
            if (!group.IsRoot) t.copy_(FromRawBytes(bytes, cpu.dtype, cpu.shape).to(t.device));
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
    /// every rank reports).
    /// </summary>
    public static void AverageGradients(ProcessGroup group, IReadOnlyList<(string Name, Tensor Grad)> grads, int parameterCount,
        long localCount, long globalCount)
    {
        if (!group.IsDistributed) return;
        Span<long> shape = [grads.Count, -grads.Count];
        group.AllreduceMax(shape);
        if (shape[0] != -shape[1] || grads.Count != shape[0])
            throw ProcessGroup.Agreed(new WeakSegException($"the ranks' gradients differ in number ({grads.Count} of {parameterCount} parameters " +
                $"on rank {group.Rank}, between {-shape[1]} and {shape[0]} on others): data-parallel training needs every trainable parameter " +
                "to receive a gradient on every rank, or on none"));
        double weight = (double)localCount / globalCount;
        int start = 0;
        while (start < grads.Count)
        {
            int end = start;
            long elements = 0;
            while (end < grads.Count && (end == start || elements + grads[end].Grad.numel() <= BucketElements)) elements += grads[end++].Grad.numel();
            ReduceBucket(group, grads, start, end, weight);
            start = end;
        }
    }

    static void ReduceBucket(ProcessGroup group, IReadOnlyList<(string Name, Tensor Grad)> grads, int start, int end, double weight)
    {
        using var scope = torch.NewDisposeScope();
        for (int i = start; i < end; i++)
            if (grads[i].Grad.dtype != ScalarType.Float32)
                throw new WeakSegException($"data-parallel training averages float32 gradients; {grads[i].Name} has {grads[i].Grad.dtype}");
        var flat = torch.cat(Enumerable.Range(start, end - start).Select(i => grads[i].Grad.detach().reshape(-1).cpu()).ToArray());
        using (var w = weight.ToScalar()) flat.mul_(w);
        var buffer = flat.data<float>().ToArray();
        group.AllreduceSum(buffer);
        var reduced = torch.tensor(buffer);
        long offset = 0;
        for (int i = start; i < end; i++)
        {
            var g = grads[i].Grad;
            long n = g.numel();
            g.copy_(reduced.narrow(0, offset, n).view(g.shape).to(g.device));
            offset += n;
        }
    }

    static byte[] RawBytes(Tensor cpu, string name) => cpu.dtype switch
    {
        ScalarType.Float32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()).ToArray(),
        ScalarType.Float64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<double>().ToArray().AsSpan()).ToArray(),
        ScalarType.Int64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<long>().ToArray().AsSpan()).ToArray(),
        ScalarType.Int32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<int>().ToArray().AsSpan()).ToArray(),
        ScalarType.Bool => cpu.data<bool>().ToArray().Select(b => b ? (byte)1 : (byte)0).ToArray(),
        ScalarType.Byte => cpu.data<byte>().ToArray(),
        _ => throw new WeakSegException($"data-parallel training cannot broadcast {name} of type {cpu.dtype}"),
    };

    static Tensor FromRawBytes(byte[] bytes, ScalarType dtype, long[] shape) => dtype switch
    {
        ScalarType.Float32 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape),
        ScalarType.Float64 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes).ToArray(), shape),
        ScalarType.Int64 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray(), shape),
        ScalarType.Int32 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray(), shape),
        ScalarType.Bool => torch.tensor(bytes.Select(b => b != 0).ToArray(), shape),
        _ => torch.tensor(bytes, shape),
    };
}
