using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Runtime;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Training;

/// <summary>2-layer MLP with a LayerNorm (1-D weights), dropout (uses torch's RNG) and a named cls_token parameter.</summary>
internal sealed class TinyNet : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly LayerNorm norm;
    private readonly Dropout drop;
    private readonly Linear fc2;
    private readonly Parameter cls_token;

    public TinyNet(int inFeatures = 48, int hidden = 16, int classes = 3) : base(nameof(TinyNet))
    {
        fc1 = nn.Linear(inFeatures, hidden);
        norm = nn.LayerNorm(hidden);
        drop = nn.Dropout(0.2);
        fc2 = nn.Linear(hidden, classes);
        cls_token = nn.Parameter(torch.randn(1, classes) * 0.02);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) // [B, 3, 4, 4] → [B, K]
    {
        var h = drop.call(nn.functional.gelu(norm.call(fc1.call(x.flatten(1)))));
        return fc2.call(h) + cls_token;
    }
}

/// <summary>Multilabel soft-margin loss + a small regulariser; optional NaN injected into part "cls" at one step index.
/// Uses the step's managed RNG (input jitter) so resume must reproduce it too.</summary>
internal sealed class TinyTrainable(TinyNet net, long? nanAtStepIndex = null) : ITrainable
{
    public nn.Module Model => net;
    public TinyNet Net => net;

    public LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var jitter = (float)(context.Random.NextDouble() * 0.1);
        var logits = net.call(batch.Images + jitter);
        var cls = nn.functional.multilabel_soft_margin_loss(logits, batch.Labels);
        if (context.Step == nanAtStepIndex) cls = cls * float.NaN;
        var reg = logits.pow(2).mean() * 0.01f;
        return new LossTerms(cls + reg, [("cls", cls), ("reg", reg)]);
    }

    /// <summary>Fresh model seeded like a real run: TorchRuntime.Seed(seed) then construction.</summary>
    public static TinyTrainable Create(long seed, long? nanAtStepIndex = null)
    {
        TorchRuntime.Seed(seed);
        return new TinyTrainable(new TinyNet(), nanAtStepIndex);
    }
}

internal static class SyntheticBatches
{
    /// <summary>Batch of step s depends on s only: images ~ U[0,1) from a generator seeded 1000 + s, labels = image-mean rules.</summary>
    public static IBatchStream Create(int batchSize = 4) => new DelegateBatchStream(start => Stream(start, batchSize));

    static IEnumerable<TrainBatch> Stream(long start, int batchSize)
    {
        for (long s = start; ; s++)
        {
            using var g = new Generator((ulong)(1000 + s));
            var images = torch.rand(new long[] { batchSize, 3, 4, 4 }, generator: g);          // [B, 3, 4, 4]
            var channelMeans = images.mean(new long[] { 2, 3 });                               // [B, 3]
            var labels = (channelMeans > 0.5f).to_type(torch.float32);                          // [B, 3]
            yield return new TrainBatch(images, labels);
        }
    }
}

internal static class Weights
{
    /// <summary>All state_dict values, concatenated in key order.</summary>
    public static float[] Flatten(nn.Module m)
    {
        var all = new List<float>();
        foreach (var (_, t) in m.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)))
            all.AddRange(t.detach().cpu().to_type(torch.float32).data<float>().ToArray());
        return all.ToArray();
    }
}
