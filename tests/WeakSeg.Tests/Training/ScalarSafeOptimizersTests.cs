using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Runtime;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Training;

/// <summary>
/// The optimizers and collectives of the training step hold their Scalars across the native calls (TorchSharp's own AdamW/SGD and
/// <c>linalg.vector_norm</c> pass temporary Scalars that a garbage collection on another thread can free mid-call). Checked against
/// TorchSharp's optimizers bitwise, with a thread forcing collections and finalizers without pause while the steps run.
/// </summary>
[Collection("Torch")]
public class ScalarSafeOptimizersTests
{
    /// <summary>Parameters of a few shapes (two groups: weight matrices decayed, vectors not) and a loss whose gradient depends on
    /// the weights, so moments and updates differ from step to step.</summary>
    static List<Parameter> MakeParameters()
    {
        torch.manual_seed(5);
        var list = new List<Parameter>();
        for (int i = 0; i < 12; i++)
        {
            list.Add(new Parameter(torch.randn(48, 40)));
            list.Add(new Parameter(torch.randn(40)));
        }
        return list;
    }

    static void Backward(List<Parameter> parameters, int step)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var p in parameters) p.grad?.zero_();
        using var one = 1.ToScalar();
        using var factor = (0.25 * step).ToScalar();
        var target = torch.full(1, factor);
        var loss = parameters.Select(p => p.square().sum().mul(target).add(p.sin().sum(), one)).Aggregate((a, b) => a.add(b, one));
        loss.backward();
    }

    /// <summary>Runs <paramref name="steps"/> steps; with <paramref name="collect"/>, a <see cref="CollectorStress"/> thread runs during each
    /// optimizer step (not during the test's own loss and backward pass). Returns the final weights and the collections done.</summary>
    static (float[][] Weights, int Collections) Run(OptimizerHelper optimizer, List<Parameter> parameters, int steps, bool collect)
    {
        int collections = 0;
        for (int s = 0; s < steps; s++)
        {
            foreach (var g in optimizer.ParamGroups) g.LearningRate = 0.01 * (1 + s % 3);    // the trainer sets rates every step
            Backward(parameters, s);
            if (!collect) { optimizer.step(); continue; }
            using var collector = CollectorStress.Start();
            optimizer.step();
            collector.Dispose();
            collections += collector.Collections;
        }
        return (parameters.Select(p => p.detach().data<float>().ToArray()).ToArray(), collections);
    }

    static void AssertBitwise(float[][] expected, float[][] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].AsSpan().SequenceEqual(actual[i]), $"parameter {i} differs");
    }

    [Fact]
    public void AdamW_equals_TorchSharps_AdamW_bitwise_while_another_thread_collects_garbage_continuously()
    {
        const int steps = 40;
        AdamW.ParamGroup[] Groups(List<Parameter> p) =>
        [
            new(p.Where(x => x.dim() == 2).ToList(), 0.01, 0.9, 0.999, 1e-8, 0.05, false, false),
            new(p.Where(x => x.dim() == 1).ToList(), 0.01, 0.9, 0.999, 1e-8, 0.0, false, false),
        ];
        var reference = MakeParameters();
        using var torchSharps = torch.optim.AdamW(Groups(reference), 0.01, 0.9, 0.999, 1e-8, 0.05);
        var (expected, _) = Run(torchSharps, reference, steps, collect: false);

        var parameters = MakeParameters();
        using var safe = new ScalarSafe.AdamW(Groups(parameters), 0.01, 0.9, 0.999, 1e-8, 0.05);
        var (actual, collections) = Run(safe, parameters, steps, collect: true);
        Assert.True(collections >= steps, $"only {collections} collections ran during {steps} optimizer steps");
        AssertBitwise(expected, actual);
        var first = MakeParameters()[0].detach().data<float>().ToArray();
        Assert.True(first.Zip(actual[0]).Max(p => Math.Abs(p.First - p.Second)) > 0.1f, "the steps moved the weights");
        // The optimizer state and its file are TorchSharp's: checkpoints written with either optimizer load into the other.
        using var saved = new MemoryStream();
        safe.save_state_dict(new BinaryWriter(saved));
        using var savedByTorchSharp = new MemoryStream();
        torchSharps.save_state_dict(new BinaryWriter(savedByTorchSharp));
        Assert.True(saved.ToArray().AsSpan().SequenceEqual(savedByTorchSharp.ToArray()), "optimizer.bin differs");
        savedByTorchSharp.Position = 0;
        safe.load_state_dict(new BinaryReader(savedByTorchSharp));
        Assert.Equal(steps, ((AdamW.State)safe.state_dict().State[0]).step);
    }

    [Fact]
    public void Sgd_with_momentum_and_weight_decay_equals_TorchSharps_SGD_bitwise_while_another_thread_collects_garbage()
    {
        const int steps = 40;
        SGD.ParamGroup[] Groups(List<Parameter> p) =>
        [
            new(p.Where(x => x.dim() == 2).ToList(), 0.01, 0.9, 0.0, 0.2, false, false),
            new(p.Where(x => x.dim() == 1).ToList(), 0.01, 0.9, 0.0, 0.0, false, false),
        ];
        var reference = MakeParameters();
        using var torchSharps = torch.optim.SGD(Groups(reference), 0.01, 0.9, 0.0, 0.2);
        var (expected, _) = Run(torchSharps, reference, steps, collect: false);

        var parameters = MakeParameters();
        using var safe = new ScalarSafe.SGD(Groups(parameters), 0.01, 0.9, 0.0, 0.2);
        var (actual, _) = Run(safe, parameters, steps, collect: true);
        AssertBitwise(expected, actual);
    }

    [Fact]
    public void The_gradient_norm_without_a_Scalar_order_is_vector_norm_bitwise()
    {
        torch.manual_seed(3);
        foreach (var shape in new long[][] { [7], [48, 40], [3, 5, 17, 2], [1] })
        {
            using var t = torch.randn(shape).mul(torch.full(1, 1e3));
            using var viaNorm = torch.linalg.norm(t);
            using var viaVectorNorm = torch.linalg.vector_norm(t);
            Assert.Equal(viaVectorNorm.item<float>(), viaNorm.item<float>());
            Assert.Equal(0, viaNorm.dim());
        }
    }

    [Fact]
    public void Gradient_buckets_pack_gradients_up_to_the_bucket_size_and_scale_them_in_place()
    {
        // One process: the all-reduce is the identity, so Reduce leaves weight × gradient in every gradient, through the buckets.
        torch.manual_seed(9);
        long big = DataParallel.BucketElements + 3;                                    // larger than a bucket: a bucket of its own
        long[] sizes = [5, DataParallel.BucketElements - 5, 1, big, 2];                // buckets: [0, 1], [2], [3], [4]
        var grads = sizes.Select((n, i) => ($"p{i}", torch.randn(n).reshape(n == 5 ? new long[] { 5, 1 } : new long[] { n }))).ToList();
        var expected = grads.Select(g => g.Item2.mul(torch.full(1, 0.25)).data<float>().ToArray()).ToList();
        using var buckets = new GradientBuckets();
        using (var quarter = 0.25.ToScalar()) buckets.Reduce(ProcessGroup.Single, grads, quarter);
        Assert.Equal(4, buckets.Count);
        for (int i = 0; i < grads.Count; i++) Assert.True(expected[i].AsSpan().SequenceEqual(grads[i].Item2.data<float>().ToArray()), $"gradient {i}");
        // Another layout (the gradients changed size) rebuilds the buckets.
        List<(string, Tensor)> small = [("a", torch.ones(4)), ("b", torch.ones(2, 3))];
        using (var half = 0.5.ToScalar()) buckets.Reduce(ProcessGroup.Single, small, half);
        Assert.Equal(1, buckets.Count);
        Assert.All(small, g => Assert.All(g.Item2.data<float>().ToArray(), v => Assert.Equal(0.5f, v)));
        foreach (var g in grads.Concat(small)) g.Item2.Dispose();
    }
}
