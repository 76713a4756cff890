using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods.MoRe;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.MoRe;

/// <summary>MoRe's GCR, losses, network and LAM against the official code (tests/fixtures/single_stage/README.md).</summary>
[Collection("Torch")]
public class MoReFixtureTests
{
    static SafetensorsFile Case(string name) => SafetensorsFile.Read(TestPaths.Fixture("single_stage", name + ".safetensors"));

    static GraphClassAggregation LoadGcr(GcrNeighbourScore score = GcrNeighbourScore.Reference)
    {
        var gcr = new GraphClassAggregation(32, 0.5, score);
        var report = TimmWeightImport.LoadFile(gcr, TestPaths.Fixture("single_stage", "more_gca.weights.safetensors"));
        Assert.Empty(report.Missing);
        Assert.Equal(new[] { "_fc1.0.bias", "_fc1.0.weight" }, report.Unexpected);   // defined but unused by the reference
        return gcr;
    }

    [Fact]
    public void Gcr_matches_the_reference()
    {
        var io = Case("more_gca");
        using var scope = torch.NewDisposeScope();
        using var gcr = LoadGcr();
        using var noGrad = torch.no_grad();
        var q = io.ToTorch("cls_tokens");
        var p = io.ToTorch("feats");
        var (eh, et) = gcr.Embeddings(q, p);
        TensorAssert.Close(io.ToTorch("e_h"), eh, 1e-4, "e_h");
        TensorAssert.Close(io.ToTorch("e_t"), et, 1e-4, "e_t");
        Assert.Equal(2, gcr.TopK(5));
        TensorAssert.Close(io.ToTorch("out"), gcr.call(q, p), 1e-4, "out");
    }

    [Fact]
    public void Gcr_dot_product_score_differs_from_the_reference_product_of_sums()
    {
        var io = Case("more_gca");
        using var scope = torch.NewDisposeScope();
        using var reference = LoadGcr();
        using var dot = LoadGcr(GcrNeighbourScore.DotProduct);
        using var noGrad = torch.no_grad();
        var q = io.ToTorch("cls_tokens");
        var p = io.ToTorch("feats");
        var a = reference.call(q, p);
        var b = dot.call(q, p);
        Assert.True(a.sub(b).abs().max().item<float>() > 1e-3, "the corrected score must change the output");

        // Brute force of the dot-product variant for image 0, class 0.
        var (eh, et) = dot.Embeddings(q, p);
        var logits = torch.matmul(eh[0, 0], et[0].t()).div(Math.Sqrt(32));
        var (top, idx) = logits.topk(2);
        var prob = top.softmax(0);
        var scores = new double[2];
        var nb = new Tensor[2];
        for (int j = 0; j < 2; j++)
        {
            nb[j] = et[0, idx[j].item<long>()];
            var r = eh[0, 0].mul(1 - prob[j].item<float>()).add(nb[j].mul(prob[j].item<float>()));
            var gate = eh[0, 0].add(r).tanh();
            scores[j] = nb[j].mul(gate).sum().item<float>();
        }
        double m = Math.Max(scores[0], scores[1]);
        double a0 = Math.Exp(scores[0] - m), a1 = Math.Exp(scores[1] - m);
        var expectedAggregate = nb[0].mul(a0 / (a0 + a1)).add(nb[1].mul(a1 / (a0 + a1)));
        // out = LN(leaky(linear1(0.1(eh + eN) + q)) + leaky(linear2(0.1 eh eN + q))): check through the module's own layers
        var state = dot.state_dict();
        var sum = nn.functional.leaky_relu(nn.functional.linear(eh[0, 0].add(expectedAggregate).mul(0.1).add(q[0, 0]), state["linear1.weight"], state["linear1.bias"]), 0.01);
        var product = nn.functional.leaky_relu(nn.functional.linear(eh[0, 0].mul(expectedAggregate).mul(0.1).add(q[0, 0]), state["linear2.weight"], state["linear2.bias"]), 0.01);
        var expected = nn.functional.layer_norm(sum.add(product), new long[] { 32 }, state["norm.weight"], state["norm.bias"], 1e-5);
        TensorAssert.Close(expected, b[0, 0], 1e-4, "dot-product GCR");
    }

    [Fact]
    public void Top_k_larger_than_the_token_count_is_rejected_with_the_values()
    {
        using var scope = torch.NewDisposeScope();
        using var gcr = new GraphClassAggregation(8, topK: 30);
        var e = Assert.Throws<WeakSegException>(() => gcr.call(torch.randn(1, 5, 8), torch.randn(1, 16, 8)));
        Assert.Contains("top-k 30", e.Message);
        Assert.Contains("token count 21", e.Message);
    }

    [Fact]
    public void Uniqueness_loss_matches_the_reference()
    {
        var io = Case("more_multi_cls_loss");
        using var scope = torch.NewDisposeScope();
        var tokens = io.ToTorch("cls_tokens");
        var labels = io.ToTorch("cls_label");
        TensorAssert.Close(io.ToTorch("loss"), MoReLoss.ClassTokenUniqueness(tokens).reshape(1), 1e-4, "only_regu");
        TensorAssert.Close(io.ToTorch("loss_only_regu_false"), MoReLoss.ClassTokenUniqueness(tokens, labels, onlyRegularization: false).reshape(1), 1e-4, "with mlsm");
    }

    [Fact]
    public void Confident_relation_loss_matches_the_reference()
    {
        var io = Case("more_cre_loss");
        using var scope = torch.NewDisposeScope();
        var loss = MoReLoss.ConfidentRelation(io.ToTorch("attr_tokens"), io.ToTorch("fmap"), io.ToTorch("mask"), io.ToTorch("cls_label"), 0.5);
        TensorAssert.Close(io.ToTorch("loss"), loss.reshape(1), 1e-4, "cre");
    }

    [Theory]
    [InlineData("det")]
    [InlineData("rnd")]
    public void Uncertain_relation_loss_and_token_choice_match_the_reference(string sub)
    {
        var io = Case("more_ure_loss");
        using var scope = torch.NewDisposeScope();
        var mask = io.ToTorch($"{sub}_mask");
        Assert.Equal(0L, io.ToTorch($"{sub}_roi").ne(MoReLoss.RegionMap(mask)).sum().item<long>());
        var permutations = sub == "rnd"
            ? new[] { io.ToTorch("rnd_randperm_img0").data<long>().ToArray(), io.ToTorch("rnd_randperm_img1").data<long>().ToArray() }
            : null;
        IReadOnlyList<long> Permutation(int image, int n)
        {
            if (permutations is null) return Enumerable.Range(0, n).Select(i => (long)i).ToArray();
            Assert.Equal(permutations[image].Length, n);
            return permutations[image];
        }
        var fmap = io.ToTorch("fmap");
        var (loss, selections) = MoReLoss.UncertainRelation(io.ToTorch("attr_tokens"), fmap, mask, io.ToTorch("cls_label"), Permutation);
        for (int i = 0; i < 2; i++)
            TensorAssert.Close(io.ToTorch($"{sub}_selected_img{i}"), MoReLoss.SelectedTokens(fmap, i, selections[i]), 1e-5, $"selected img{i}");
        TensorAssert.Close(io.ToTorch($"{sub}_loss"), loss.reshape(1), 1e-4, "ure");

        // The detected-position option reads the candidate cell itself, 3 rows and columns further.
        var (_, detected) = MoReLoss.UncertainRelation(io.ToTorch("attr_tokens"), fmap, mask, io.ToTorch("cls_label"), Permutation,
            position: UncertainTokenPosition.Detected);
        Assert.Equal(selections[0].Rows.Select(rc => (rc.Row + 3, rc.Column + 3)), detected[0].Rows);
    }

    internal static MoReConfig TinyConfig => new()
    {
        NumClasses = 5,
        Backbone = new VitConfig
        {
            ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 4, NumHeads = 4, DropPathRate = 0.0,
            PositionEmbeddingResize = PositionEmbeddingResize.DinoScaleFactor,
        },
        AuxLayer = -3,
        DecoderWidth = 8,
        CropSize = 32,
    };

    [Fact]
    public void Tiny_network_cam_and_lam_match_the_reference()
    {
        var io = Case("more_network_tiny");
        using var scope = torch.NewDisposeScope();
        using var network = new MoReNetwork(TinyConfig);
        var report = TimmWeightImport.LoadFile(network, TestPaths.Fixture("single_stage", "more_network_tiny.weights.safetensors"));
        Assert.Equal(new[] { "graph_layer._fc1.0.bias", "graph_layer._fc1.0.weight" }, report.Unexpected);
        Assert.All(report.Missing, k => Assert.StartsWith("decoder.", k));
        network.eval();
        using var noGrad = torch.no_grad();
        var inputs = io.ToTorch("inputs");

        using var output = network.Forward(inputs);
        TensorAssert.Close(io.ToTorch("ff_class_tokens"), output.ClassTokens, 1e-4, "class tokens");
        TensorAssert.Close(io.ToTorch("ff_patch_tokens"), output.FeatureMap.flatten(2).transpose(1, 2), 1e-4, "patch tokens");
        TensorAssert.Close(io.ToTorch("ff_aux_tokens"), output.AuxFeatureMap.flatten(2).transpose(1, 2), 1e-4, "aux tokens");
        TensorAssert.Close(io.ToTorch("cls_x4"), output.ClassLogits, 1e-4, "cls_x4");
        TensorAssert.Close(io.ToTorch("cls_aux"), output.AuxLogits, 1e-4, "cls_aux");
        TensorAssert.Close(io.ToTorch("fmap"), output.FeatureMap, 1e-4, "fmap");
        TensorAssert.Close(io.ToTorch("attr_tokens"), output.AttributeTokens, 1e-4, "attr_tokens");
        using var plain = network.Forward(inputs, withGcr: false);
        TensorAssert.Close(io.ToTorch("class_tokens_no_gcr"), plain.AttributeTokens, 1e-4, "no gcr");

        var (cam, camAux) = MoReMaps.MultiScaleCam(network, inputs, [1.0, 0.5, 0.75, 1.5]);
        TensorAssert.Close(io.ToTorch("cam"), cam, 1e-4, "cam");
        TensorAssert.Close(io.ToTorch("cam_aux"), camAux, 1e-4, "cam_aux");
        TensorAssert.Close(io.ToTorch("lam_s1"), MoReMaps.MultiScaleLam(network, inputs, [1.0]), 1e-4, "lam_s1");
        TensorAssert.Close(io.ToTorch("lam_s7"), MoReMaps.MultiScaleLam(network, inputs, [1.0, 0.5, 0.75, 1.25, 1.5, 1.75, 2.0]), 1e-4, "lam_s7");
    }

    [Fact]
    public void Prefix_tokens_start_from_the_checkpoint_class_token_with_redrawn_register_positions()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        using var network = new MoReNetwork(TinyConfig with { Backbone = TinyConfig.Backbone with { ImageSize = 16 } });   // 2×2 grid
        var cls = torch.randn(1, 1, 32);
        var pos = torch.randn(1, 1 + 16, 32);                                                    // a 4×4 checkpoint grid
        network.InitializePrefixTokens(cls, pos);
        var tokens = network.Encoder.ClassTokenParameter;
        var embedding = network.Encoder.PositionEmbeddingParameter;
        Assert.Equal(new long[] { 1, 9, 32 }, tokens.shape);
        for (int t = 0; t < 9; t++) TensorAssert.Close(cls[0, 0], tokens[0, t], 0, $"token {t}");
        for (int t = 4; t < 9; t++) TensorAssert.Close(pos[0, 0], embedding[0, t], 0, $"class position {t}");
        var registers = embedding[0].narrow(0, 0, 4);
        Assert.True(registers.sub(pos[0, 0]).abs().min().item<float>() > 0, "register positions are redrawn");
        Assert.True(registers.abs().max().item<float>() <= 2.0f, "truncated normal within ±2");
        var expectedPatches = PositionEmbedding.Resize(pos, 1, 2, 2, PositionEmbeddingResize.DinoScaleFactor).narrow(1, 1, 4);
        TensorAssert.Close(expectedPatches[0], embedding[0].narrow(0, 9, 4), 1e-6, "patch positions resized");
    }

    [Fact]
    public void Every_parameter_gets_a_gradient_and_a_few_steps_lower_the_loss()
    {
        torch.manual_seed(0);
        var config = TinyConfig with
        {
            NumClasses = 3, Backbone = TinyConfig.Backbone with { ImageSize = 64 }, CropSize = 64, CamScales = [1.0],
            Segmentation = new LossWeight(0.12, 0), LearningRate = 1e-3, WarmupSteps = 0, Steps = 10, BatchSize = 2,
        };
        using var network = new MoReNetwork(config);
        var trainable = new MoReTrainable(network);
        TrainBatch Batch()
        {
            using var generator = new torch.Generator(11);
            var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
            return new TrainBatch(torch.randn(new long[] { 2, 3, 64, 64 }, generator: generator), labels);
        }
        using (var scope = torch.NewDisposeScope())
        {
            network.train();
            network.zero_grad();
            var terms = trainable.ComputeLoss(Batch(), new TrainStepContext(0, 10, 1e-3, new Random(3)));
            Assert.Equal(new[] { "cls", "cls_aux", "attri", "ptc", "cle", "une", "seg" }, terms.Parts.Select(p => p.Name));
            terms.Total.backward();
            foreach (var (name, p) in network.named_parameters())
            {
                Assert.True(p.grad is not null, $"{name} has no gradient");
                Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name} has an all-zero gradient");
            }
        }
        using var dir = TestPaths.NewTempDir();
        var losses = new List<float>();
        var trainer = new Trainer(config.ToTrainerOptions(new TrainerOptions { CheckpointEvery = 100, LogEvery = 1 }), dir.File("run"))
        { StepCompleted = r => losses.Add(r.Loss) };
        Assert.True(trainer.Run(trainable, new DelegateBatchStream(_ => Forever(Batch))).Completed);
        Assert.True(losses.Skip(8).Average() < 0.8 * losses.Take(2).Average(), $"losses: {string.Join(", ", losses)}");
    }

    static IEnumerable<TrainBatch> Forever(Func<TrainBatch> make)
    {
        while (true) yield return make();
    }
}
