using System.Globalization;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using WeakSeg.Models.ResNet;
using static TorchSharp.torch;

namespace WeakSeg.Models.Weights;

/// <summary>One ONNX initializer assigned to a model parameter or buffer by <see cref="OnnxResNetImport"/>.</summary>
/// <param name="Node">name of the Conv or BatchNormalization node that consumes it</param>
/// <param name="OpType">Conv or BatchNormalization</param>
/// <param name="Initializer">the initializer's (opaque) name in the file, e.g. <c>Parameter91</c></param>
/// <param name="Key">torchvision key, e.g. <c>layer2.0.downsample.0.weight</c></param>
public sealed record OnnxInitializerMapping(string Node, string OpType, string Initializer, string Key);

/// <summary>The weights of a ResNet ONNX graph under torchvision keys, with the layout found and the mapping that produced them.</summary>
public sealed class OnnxResNetWeights : IDisposable
{
    internal OnnxResNetWeights(string path, IReadOnlyList<int> blocksPerStage, IReadOnlyList<OnnxInitializerMapping> mapping,
        IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyList<string> stageOutputs)
    {
        Path = path;
        BlocksPerStage = blocksPerStage;
        Mapping = mapping;
        Tensors = tensors;
        StageOutputs = stageOutputs;
    }

    public string Path { get; }

    /// <summary>Basic blocks per stage as found in the graph (the packaged model: 2, 2, 2, 3).</summary>
    public IReadOnlyList<int> BlocksPerStage { get; }

    /// <summary>Every Conv weight and BatchNormalization scale/bias/mean/var, in graph node order.</summary>
    public IReadOnlyList<OnnxInitializerMapping> Mapping { get; }

    /// <summary>torchvision key → float32 tensor.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>Graph tensor names of each stage's output (stride 4, 8, 16, 32 in the packaged model), e.g. to fetch them in another runtime.</summary>
    public IReadOnlyList<string> StageOutputs { get; }

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}

/// <summary>
/// Reads a ResNet of basic blocks from an ONNX file (parsed with the ONNX protobuf schema) and loads it into a <see cref="ResNet.ResNet"/>.
/// Initializer names are opaque in the packaged CNTK export, so roles come from the graph: nodes are walked in order, each Conv
/// is named by what it consumes (the network input → <c>conv1</c>; a block's input → <c>layerS.B.conv1</c>, or
/// <c>layerS.B.downsample.0</c> for a 1×1 kernel; the ReLU after that block's <c>bn1</c> → <c>conv2</c>) and each
/// BatchNormalization after the Conv it normalises. A block whose convs have stride 2 or a 1×1 projection starts the next stage.
/// </summary>
public static class OnnxResNetImport
{
    const int OnnxFloat = 1;

    /// <summary>Parses the ONNX file and maps its initializers to torchvision keys. Every problem is one <see cref="WeakSegException"/>
    /// naming the file and the first node or initializer that does not fit.</summary>
    public static OnnxResNetWeights Read(string path, double batchNormEps = 1e-5)
    {
        var graph = ParseModel(path).Graph ?? throw WeakSegException.ForFile(path, "ONNX model has no graph");
        try { return Walk(path, graph, batchNormEps); }
        catch (WeakSegException e) { throw WeakSegException.ForFile(path, e.Message); }
    }

    /// <summary>Reads <paramref name="path"/> and copies its weights into <paramref name="model"/> (see <see cref="Load(ResNet.ResNet, OnnxResNetWeights)"/>).</summary>
    public static WeightImportReport LoadFile(ResNet.ResNet model, string path)
    {
        using var weights = Read(path, model.Config.BatchNormEps);
        return Load(model, weights) with { Source = path };
    }

    /// <summary>
    /// Copies the weights into <paramref name="model"/>. Stages the model does not build are reported as unexpected; a model key
    /// the graph lacks (e.g. a block the file does not have), a block the model lacks in a built stage, or a shape that differs is an
    /// error naming the node and initializer. The model is untouched when it fails. <c>num_batches_tracked</c> is reported missing.
    /// </summary>
    public static WeightImportReport Load(ResNet.ResNet model, OnnxResNetWeights weights)
    {
        var target = model.state_dict();
        int builtStages = model.Config.Stages;
        var plan = new List<(string Key, Tensor Value)>();
        var unexpected = new List<string>();
        var byKey = weights.Mapping.ToDictionary(m => m.Key, StringComparer.Ordinal);
        {
            foreach (var (key, value) in weights.Tensors)
            {
                if (!target.TryGetValue(key, out var modelTensor))
                {
                    if (StageOf(key) > builtStages) { unexpected.Add(key); continue; }
                    var m = byKey[key];
                    throw WeakSegException.ForFile(weights.Path, $"node '{m.Node}' ({m.OpType}) maps to '{key}', which the model does not have " +
                        $"(model blocks per stage: {string.Join("-", model.Config.BlocksPerStage)}; graph: {string.Join("-", weights.BlocksPerStage)})");
                }
                if (!value.shape.SequenceEqual(modelTensor.shape))
                {
                    var m = byKey[key];
                    throw WeakSegException.ForFile(weights.Path, $"initializer '{m.Initializer}' of node '{m.Node}' ({key}) has shape {Shape(value)} but the model expects {Shape(modelTensor)}");
                }
                plan.Add((key, value));
            }
            var missing = target.Keys.Where(k => !weights.Tensors.ContainsKey(k)).ToList();
            var firstReal = missing.FirstOrDefault(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal));
            if (firstReal is not null)
                throw WeakSegException.ForFile(weights.Path, $"the graph has no initializer for the model's '{firstReal}' (graph blocks per stage: {string.Join("-", weights.BlocksPerStage)}; " +
                    $"model: {string.Join("-", model.Config.BlocksPerStage.Take(builtStages))})");
            using (torch.no_grad())
                foreach (var (key, value) in plan) target[key].copy_(value);
            return new WeightImportReport(plan.Select(p => p.Key).ToList(), missing, [], unexpected);
        }
    }

    /// <summary>Loads the packaged ImageNet ResNet-18 (<see cref="PackagedResNet18.ModelPath"/>) into <paramref name="model"/>.</summary>
    public static WeightImportReport LoadPackaged(ResNet.ResNet model) => LoadFile(model, PackagedResNet18.ModelPath);

    /// <summary>
    /// The prep graph's channel order and mean: a Split of the input along channels, a Concat of the parts (the order of the Concat
    /// gives the permutation; the packaged graph gives B, G, R = input channels 2, 1, 0) and a Sub of a constant mean image.
    /// </summary>
    public static (int[] ChannelOrder, Tensor MeanImage) ReadPreprocessing(string path)
    {
        var graph = ParseModel(path).Graph ?? throw WeakSegException.ForFile(path, "ONNX model has no graph");
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        int[]? order = null;
        string[]? splitOutputs = null;
        string? concatOutput = null;
        Tensor? mean = null;
        foreach (var node in graph.Node)
        {
            switch (node.OpType)
            {
                case "Split" when splitOutputs is null && node.Output.Count == 3 && IntAttribute(node, "axis", 0) == 1:
                    splitOutputs = [.. node.Output];
                    break;
                case "Concat" when splitOutputs is not null && node.Input.Count == 3 && IntAttribute(node, "axis", 0) == 1:
                    order = node.Input.Select(i => Array.IndexOf(splitOutputs, i)).ToArray();
                    if (order.Any(i => i < 0)) throw WeakSegException.ForFile(path, $"node '{NodeName(node)}' concatenates tensors other than the channel split");
                    concatOutput = node.Output[0];
                    break;
                case "Sub" when concatOutput is not null && node.Input.Count == 2 && node.Input[0] == concatOutput:
                    if (!initializers.TryGetValue(node.Input[1], out var meanProto))
                        throw WeakSegException.ForFile(path, $"node '{NodeName(node)}' subtracts '{node.Input[1]}', which is not an initializer");
                    mean = ToTensor(meanProto, path);
                    if (mean.dim() != 4 || mean.shape[1] != 3) throw WeakSegException.ForFile(path, $"initializer '{meanProto.Name}' has shape {Shape(mean)}, expected [1, 3, H, W]");
                    break;
                default:
                    throw WeakSegException.ForFile(path, $"node '{NodeName(node)}' ({node.OpType}) does not fit a channel split → concat → mean subtraction graph");
            }
        }
        if (order is null || mean is null) throw WeakSegException.ForFile(path, "graph has no channel split, concat and mean subtraction");
        return (order, mean);
    }

    /// <summary>The packaged prep graph's channel order and mean image.</summary>
    public static (int[] ChannelOrder, Tensor MeanImage) ReadPackagedPreprocessing() => ReadPreprocessing(PackagedResNet18.PreprocessPath);

    static ModelProto ParseModel(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "ONNX file not found");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e) { throw WeakSegException.ForFile(path, $"not a valid ONNX file ({e.Message})"); }
        catch (IOException e) { throw WeakSegException.ForFile(path, $"cannot read the ONNX file ({e.Message})"); }
    }

    static OnnxResNetWeights Walk(string path, GraphProto graph, double batchNormEps)
    {
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer) initializers[t.Name] = t;
        var networkInput = graph.Input.Select(i => i.Name).FirstOrDefault(n => !initializers.ContainsKey(n))
            ?? throw new WeakSegException("graph has no input besides its initializers");
        if (graph.Node.Count == 0) throw new WeakSegException("graph has no nodes");

        var convsConsuming = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            if (node.OpType == "Conv" && node.Input.Count > 0)
            {
                if (!convsConsuming.TryGetValue(node.Input[0], out var list)) convsConsuming[node.Input[0]] = list = [];
                list.Add(node);
            }

        var keyOfConvOutput = new Dictionary<string, string>(StringComparer.Ordinal);   // conv output → module key
        var keyOfBnOutput = new Dictionary<string, string>(StringComparer.Ordinal);     // BN output → module key
        var bnBeforeRelu = new Dictionary<string, string>(StringComparer.Ordinal);      // ReLU output → key of the BN it follows
        var addOutputs = new HashSet<string>(StringComparer.Ordinal);
        var mapping = new List<OnnxInitializerMapping>();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var blocks = new List<int>();
        var stageOutputs = new List<string>();
        string? stemRelu = null, blockInput = null;
        bool blockOpen = false, pooled = false;
        int stage = 0, block = -1;

        try
        {
            foreach (var node in graph.Node)
            {
                string name = NodeName(node);
                if (pooled) throw new WeakSegException($"node '{name}' ({node.OpType}) follows the final pooling; expected the graph to end there");
                string input = node.Input.Count > 0 ? node.Input[0] : "";
                switch (node.OpType)
                {
                    case "Conv":
                    {
                        string module;
                        long kernel = CheckConv(node, name);
                        if (input == networkInput && keyOfConvOutput.Count == 0) module = "conv1";
                        else if (blockInput is not null && input == blockInput)
                        {
                            if (!blockOpen)
                            {
                                bool startsStage = stage == 0 || convsConsuming[blockInput].Any(c => Strides(c).Any(s => s != 1) || KernelOf(c) == 1);
                                if (startsStage)
                                {
                                    if (stage > 0) stageOutputs.Add(blockInput);
                                    stage++; block = 0; blocks.Add(0);
                                }
                                else block++;
                                if (stage > 4) throw new WeakSegException($"node '{name}' starts a fifth stage; a ResNet has four");
                                blocks[^1]++;
                                blockOpen = true;
                            }
                            module = kernel == 1 ? $"layer{stage}.{block}.downsample.0" : $"layer{stage}.{block}.conv1";
                        }
                        else if (bnBeforeRelu.TryGetValue(input, out var bnKey) && blockOpen && bnKey == $"layer{stage}.{block}.bn1")
                            module = $"layer{stage}.{block}.conv2";
                        else
                            throw new WeakSegException($"node '{name}' (Conv) does not fit a ResNet basic block: its input '{input}' is neither the network input, " +
                                "a block's input nor the ReLU after a block's first BatchNormalization");
                        if (tensors.ContainsKey(module + ".weight")) throw new WeakSegException($"node '{name}' (Conv) would be a second '{module}'");
                        if (node.Input.Count > 2 && node.Input[2].Length > 0)
                            throw new WeakSegException($"node '{name}' (Conv) has a bias '{node.Input[2]}'; ResNet convolutions have none");
                        Assign(node, name, 1, module + ".weight");
                        keyOfConvOutput[node.Output[0]] = module;
                        break;
                    }
                    case "BatchNormalization":
                    {
                        if (!keyOfConvOutput.TryGetValue(input, out var convKey))
                            throw new WeakSegException($"node '{name}' (BatchNormalization) does not follow a Conv (input '{input}')");
                        if (node.Input.Count != 5) throw new WeakSegException($"node '{name}' (BatchNormalization) has {node.Input.Count} inputs, expected 5");
                        double eps = FloatAttribute(node, "epsilon", 1e-5f);
                        if (Math.Abs(eps - batchNormEps) > 1e-3 * batchNormEps)
                            throw new WeakSegException($"node '{name}' (BatchNormalization) has epsilon {eps.ToString(CultureInfo.InvariantCulture)}, the model {batchNormEps.ToString(CultureInfo.InvariantCulture)}");
                        string module = BatchNormKeyFor(convKey);
                        Assign(node, name, 1, module + ".weight");
                        Assign(node, name, 2, module + ".bias");
                        Assign(node, name, 3, module + ".running_mean");
                        Assign(node, name, 4, module + ".running_var");
                        keyOfBnOutput[node.Output[0]] = module;
                        break;
                    }
                    case "Relu":
                        if (keyOfBnOutput.TryGetValue(input, out var bn))
                        {
                            bnBeforeRelu[node.Output[0]] = bn;
                            if (bn == "bn1") stemRelu = node.Output[0];
                        }
                        else if (addOutputs.Contains(input)) { blockInput = node.Output[0]; blockOpen = false; }
                        else throw new WeakSegException($"node '{name}' (Relu) follows neither a BatchNormalization nor a residual Add (input '{input}')");
                        break;
                    case "MaxPool":
                        if (stemRelu is null || input != stemRelu || blockInput is not null)
                            throw new WeakSegException($"node '{name}' (MaxPool) is not the stem's pooling after conv1 → bn1 → ReLU");
                        if (KernelOf(node) != 3 || Strides(node).Any(s => s != 2))
                            throw new WeakSegException($"node '{name}' (MaxPool) is not a 3×3 stride-2 pooling");
                        blockInput = node.Output[0];
                        break;
                    case "Add":
                    {
                        if (!blockOpen || node.Input.Count != 2) throw new WeakSegException($"node '{name}' (Add) is not a residual sum inside a block");
                        string bn2 = $"layer{stage}.{block}.bn2";
                        bool fits = node.Input.Any(i => keyOfBnOutput.TryGetValue(i, out var k) && k == bn2) &&
                                    node.Input.Any(i => i == blockInput || (keyOfBnOutput.TryGetValue(i, out var k) && k == $"layer{stage}.{block}.downsample.1"));
                        if (!fits) throw new WeakSegException($"node '{name}' (Add) does not add block layer{stage}.{block}'s bn2 output to its input or downsample");
                        addOutputs.Add(node.Output[0]);
                        break;
                    }
                    case "AveragePool" or "GlobalAveragePool":
                        if (blockOpen || blockInput is null || input != blockInput)
                            throw new WeakSegException($"node '{name}' ({node.OpType}) does not pool the last block's output");
                        stageOutputs.Add(blockInput);
                        pooled = true;
                        break;
                    default:
                        throw new WeakSegException($"node '{name}' ({node.OpType}) does not fit a ResNet of basic blocks");
                }
            }
            if (stage == 0) throw new WeakSegException("graph has no residual blocks");
            if (!pooled && blockInput is not null && !blockOpen) stageOutputs.Add(blockInput);
            return new OnnxResNetWeights(path, blocks, mapping, tensors, stageOutputs);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }

        void Assign(NodeProto node, string name, int inputIndex, string key)
        {
            if (node.Input.Count <= inputIndex) throw new WeakSegException($"node '{name}' ({node.OpType}) lacks input {inputIndex} for '{key}'");
            string initializer = node.Input[inputIndex];
            if (!initializers.TryGetValue(initializer, out var proto))
                throw new WeakSegException($"node '{name}' ({node.OpType}) input '{initializer}' ({key}) is not an initializer");
            if (mapping.Any(m => m.Initializer == initializer))
                throw new WeakSegException($"initializer '{initializer}' of node '{name}' is used twice");
            tensors[key] = ToTensor(proto, null);
            mapping.Add(new OnnxInitializerMapping(name, node.OpType, initializer, key));
        }
    }

    static string BatchNormKeyFor(string convKey)
    {
        if (convKey == "conv1") return "bn1";
        if (convKey.EndsWith(".conv1", StringComparison.Ordinal)) return convKey[..^".conv1".Length] + ".bn1";
        if (convKey.EndsWith(".conv2", StringComparison.Ordinal)) return convKey[..^".conv2".Length] + ".bn2";
        return convKey[..^".0".Length] + ".1";   // downsample.0 → downsample.1
    }

    /// <summary>1-based stage of a key (<c>layer3.…</c> → 3), 0 for the stem.</summary>
    static int StageOf(string key) =>
        key.StartsWith("layer", StringComparison.Ordinal) && key.Length > 5 && char.IsDigit(key[5]) ? key[5] - '0' : 0;

    /// <summary>Checks group 1, dilation 1 and a square kernel; returns the kernel side.</summary>
    static long CheckConv(NodeProto node, string name)
    {
        if (IntAttribute(node, "group", 1) != 1) throw new WeakSegException($"node '{name}' (Conv) is a grouped convolution");
        var dilations = Ints(node, "dilations");
        if (dilations.Any(d => d != 1)) throw new WeakSegException($"node '{name}' (Conv) is dilated");
        long kernel = KernelOf(node);
        if (kernel is not (1 or 3 or 7)) throw new WeakSegException($"node '{name}' (Conv) has a kernel that does not fit a ResNet ({string.Join("×", Ints(node, "kernel_shape"))})");
        return kernel;
    }

    static long KernelOf(NodeProto node)
    {
        var k = Ints(node, "kernel_shape");
        if (k.Count != 2 || k[0] != k[1]) throw new WeakSegException($"node '{NodeName(node)}' ({node.OpType}) has kernel_shape [{string.Join(", ", k)}], expected a square 2-D kernel");
        return k[0];
    }

    static IReadOnlyList<long> Strides(NodeProto node) => Ints(node, "strides");

    static IReadOnlyList<long> Ints(NodeProto node, string attribute) =>
        node.Attribute.FirstOrDefault(a => a.Name == attribute)?.Ints.ToArray() ?? [];

    static long IntAttribute(NodeProto node, string attribute, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == attribute)?.I ?? fallback;

    static float FloatAttribute(NodeProto node, string attribute, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == attribute)?.F ?? fallback;

    static string NodeName(NodeProto node) => node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? node.OpType;

    /// <summary>A float32 initializer (float_data or little-endian raw_data) as a CPU tensor of its dims.</summary>
    static Tensor ToTensor(TensorProto proto, string? path)
    {
        string Where(string problem) => path is null ? problem : $"{path}: {problem}";
        if (proto.DataType != OnnxFloat) throw new WeakSegException(Where($"initializer '{proto.Name}' has ONNX data type {proto.DataType}, expected FLOAT (1)"));
        long[] dims = [.. proto.Dims];
        long count = dims.Aggregate(1L, (a, b) => a * b);
        float[] values;
        if (proto.FloatData.Count > 0) values = [.. proto.FloatData];
        else if (!proto.RawData.IsEmpty)
        {
            var raw = proto.RawData.Span;
            if (raw.Length % 4 != 0) throw new WeakSegException(Where($"initializer '{proto.Name}' has {raw.Length} raw bytes, not a whole number of floats"));
            values = new float[raw.Length / 4];
            for (int i = 0; i < values.Length; i++) values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(4 * i, 4));
        }
        else values = [];
        if (values.LongLength != count)
            throw new WeakSegException(Where($"initializer '{proto.Name}' holds {values.LongLength} values but its dims [{string.Join(", ", dims)}] need {count}"));
        return torch.tensor(values, dims);
    }

    static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
